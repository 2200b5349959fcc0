"""The app's background tasks; the site's TASKS setting picks where they run."""

from django.tasks import task

from webhooks_app import delivery


@task()
def deliver(delivery_id):
    """A drain for the delivery's webhook, for `deliver` tasks still queued."""
    return delivery.request_drains_for(delivery_id)


@task()
def drain(webhook_id):
    """A webhook's due deliveries, for a while (see `webhooks_app.delivery`)."""
    return delivery.drain(webhook_id)


@task()
def sweep():
    """Send again the deliveries that a dead process left; runs while any wait."""
    return delivery.sweep()
