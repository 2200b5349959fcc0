"""The app's background tasks; the site's TASKS setting picks where they run."""

from django.tasks import task

from webhooks_app import delivery


@task()
def deliver(delivery_id):
    """One attempt at one delivery (see `webhooks_app.delivery`)."""
    return delivery.deliver(delivery_id)


@task()
def drain(webhook_id):
    """A webhook's due deliveries, for a while (see `webhooks_app.delivery`)."""
    return delivery.drain(webhook_id)


@task()
def sweep():
    """Send again the deliveries that a dead process left; runs while any wait."""
    return delivery.sweep()
