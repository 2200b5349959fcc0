"""Writers of one SQLite database take turns, waiting in the kernel.

SQLite lets one transaction write at a time. One that finds the database busy
sleeps and tries again, a millisecond at first and longer after each try,
while recording holds the database for a fraction of a millisecond: under
load, the processes that recorded at once spent much of their time asleep.
Taking a turn on a lock file beside the database first (`flock`), each waits
in the kernel and goes as soon as the one before it is done.

The turn is advisory and only recording takes it. Other writers wait as
SQLite makes them, and a database that is not a file, a system without
`flock`, or a lock file that cannot be opened leave recording to do the same.
"""

import logging
import os
import threading

from django.db import transaction

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

logger = logging.getLogger("webhooks_app.recording")

_lock_files = {}
_lock_files_lock = threading.Lock()


def lock_path(connection):
    """The lock file that recordings into an SQLite database take turns on."""
    return f"{connection.settings_dict['NAME']}-writers"


class _LockFile:
    """A lock file opened by this process; its threads also take turns."""

    def __init__(self, path):
        self.threads = threading.Lock()
        # flock needs no write access, so a file made by another user serves.
        self.fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o644)


class Turn:
    """A writer's turn, held from its making until given back.

    Used as a context manager, it is given back at the end of the block at
    the latest. A turn with no lock file holds nothing.
    """

    def __init__(self, lock_file=None):
        self.lock_file = lock_file
        if lock_file is None:
            return
        lock_file.threads.acquire()
        try:
            fcntl.flock(lock_file.fd, fcntl.LOCK_EX)
        except BaseException:
            lock_file.threads.release()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.give_back()

    def give_back_on_commit(self, using):
        """Give the turn back as soon as the open transaction commits.

        Work that waits for the commit, such as queueing tasks, then runs
        after the next writer was let go. Register this first in the block.
        """
        if self.lock_file is not None:
            transaction.on_commit(self.give_back, using=using)

    def give_back(self):
        """Let the next writer go; only the first call does anything."""
        lock_file, self.lock_file = self.lock_file, None
        if lock_file is not None:
            fcntl.flock(lock_file.fd, fcntl.LOCK_UN)
            lock_file.threads.release()


def _takes_turns(connection):
    if fcntl is None or connection.vendor != "sqlite":
        return False
    if connection.is_in_memory_db():
        return False
    return not str(connection.settings_dict["NAME"]).startswith("file:")


def turn(connection):
    """Wait for this thread's turn to start a write transaction on `connection`.

    Only a transaction of its own takes a turn: inside one already open, the
    connection may hold the database while another process holds the turn
    and waits for the database.
    """
    if connection.in_atomic_block or not _takes_turns(connection):
        return Turn()
    path = lock_path(connection)
    with _lock_files_lock:
        pid, lock_file = _lock_files.get(path, (None, None))
        if pid != os.getpid():
            # A forked process would share its parent's lock, so it opens
            # the file itself, and closes its copy of the parent's.
            if lock_file is not None:
                os.close(lock_file.fd)
            lock_file = _open(path)
            _lock_files[path] = (os.getpid(), lock_file)
    return Turn(lock_file)


def _open(path):
    try:
        return _LockFile(path)
    except OSError as error:
        logger.warning(
            "Recordings wait as SQLite makes them: cannot open %s (%s).",
            path,
            error.strerror,
        )
        return None
