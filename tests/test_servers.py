import requests

from tests.servers import HANG, Reply


def test_the_receiver_answers_from_its_script_then_by_default(receiver):
    receiver.script(Reply(500, b"down"), Reply(201, b"made"))

    answers = [requests.post(receiver.url, data=b"x", timeout=5) for _ in range(3)]

    assert [a.status_code for a in answers] == [500, 201, 200]
    assert [r.body for r in receiver.requests] == [b"x", b"x", b"x"]


def test_a_hanging_reply_times_the_client_out(receiver):
    receiver.script(HANG)

    try:
        requests.post(receiver.url, data=b"x", timeout=(1, 0.3))
    except requests.Timeout:
        timed_out = True
    else:
        timed_out = False

    assert timed_out
