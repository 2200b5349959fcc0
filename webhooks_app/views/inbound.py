"""The inbound endpoint: NannyML (or anything speaking its format) POSTs here."""

import json
import logging

from django.db import transaction
from django.utils.translation import gettext_lazy as _
from rest_framework import (
    exceptions,
    negotiation,
    parsers,
    renderers,
    serializers,
    status,
)
from rest_framework.response import Response
from rest_framework.views import APIView

from webhooks_app import signing
from webhooks_app.authentication import HasInboundCredential, InboundTokenAuthentication
from webhooks_app.conf import app_settings
from webhooks_app.models import InboundMessage, Notification
from webhooks_app.recording import record_notification

logger = logging.getLogger("webhooks_app.inbound")


class BodyTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "body_too_large"


class RawJSONParser(parsers.BaseParser):
    """Keeps the body as received beside the decoded JSON, within a size limit."""

    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None):
        limit = app_settings.MAX_BODY_BYTES
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise BodyTooLarge(too_large_message(limit))
        try:
            text = raw.decode("utf-8")
            data = json.loads(text)
        except (UnicodeDecodeError, ValueError) as error:
            raise exceptions.ParseError(
                _("The body is not valid UTF-8 JSON: %(error)s") % {"error": error}
            ) from None
        return {"raw": text, "data": data}


def too_large_message(limit):
    return _("The body is larger than the %(limit)d bytes accepted.") % {"limit": limit}


def error_response(code, message, status_code, errors=None, headers=None):
    content = {"code": code, "detail": str(message)}
    if errors is not None:
        content["errors"] = errors
    return Response(content, status=status_code, headers=headers)


def inbound_exception_handler(exc, context):
    """Every refusal as `{"code", "detail", "errors"?}`, logged as a warning."""
    request = context["request"]
    if isinstance(exc, serializers.ValidationError):
        response = error_response(
            "invalid_payload",
            _("The notification is not in the expected format; see errors."),
            status.HTTP_400_BAD_REQUEST,
            errors=exc.detail,
        )
    elif isinstance(exc, exceptions.APIException):
        headers = {}
        if isinstance(
            exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed
        ):
            headers["WWW-Authenticate"] = InboundTokenAuthentication.keyword
            exc.status_code = status.HTTP_401_UNAUTHORIZED
        code = exc.get_codes() if isinstance(exc.detail, str) else exc.default_code
        response = error_response(code, exc.detail, exc.status_code, headers=headers)
    else:
        return None
    logger.warning(
        "Refused inbound %s from %s: %s %s",
        request.method,
        request.META.get("REMOTE_ADDR", "?"),
        response.status_code,
        _summary(response.data),
    )
    return response


def _summary(data):
    text = data["detail"]
    if "errors" in data:
        text = f"{text} {json.dumps(data['errors'], default=str)[:500]}"
    return text


class AnswerInJSON(negotiation.DefaultContentNegotiation):
    """Answer in JSON whatever the sender says it accepts.

    A sender's Accept header must not cost it its notification: refusing it
    with 406 would record nothing.
    """

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class InboundNotificationView(APIView):
    authentication_classes = [InboundTokenAuthentication]
    permission_classes = [HasInboundCredential]
    parser_classes = [RawJSONParser]
    renderer_classes = [renderers.JSONRenderer]
    content_negotiation_class = AnswerInJSON
    throttle_classes = []

    def get_exception_handler(self):
        return inbound_exception_handler

    def post(self, request):
        limit = app_settings.MAX_BODY_BYTES
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0
        if declared > limit:
            raise BodyTooLarge(too_large_message(limit))
        if not request.content_type:
            raise exceptions.UnsupportedMediaType(
                "", _("Send Content-Type: application/json.")
            )
        parsed = request.data
        if not parsed:
            raise exceptions.ParseError(_("The body is empty; send a JSON object."))
        message_id = self.check_signature(request, parsed["raw"])
        if message_id:
            return self.record_signed(request, parsed, message_id)
        return self.recorded(record_notification(**self.arguments(parsed)))

    def record_signed(self, request, parsed, message_id):
        """Record once per webhook-id, in one transaction with the id."""
        with transaction.atomic():
            seen, created = InboundMessage.objects.get_or_create(message_id=message_id)
            if not created:
                return self.repeated(request, seen)
            result = record_notification(**self.arguments(parsed))
            seen.notification = result.notification
            seen.save(update_fields=["notification"])
        return self.recorded(result)

    def arguments(self, parsed):
        return {
            "data": parsed["data"],
            "body": parsed["raw"],
            "source": Notification.Source.INBOUND,
        }

    def recorded(self, result):
        return Response(
            {"id": result.notification.pk, "duplicate": result.duplicate},
            status=status.HTTP_200_OK,
        )

    def check_signature(self, request, raw):
        """The webhook-id of a correctly signed request, when its sender signs."""
        secret = request.auth.signing_secret
        if not secret:
            return ""
        headers = {name: request.headers.get(name, "") for name in signing.HEADERS}
        try:
            return signing.verify(
                [secret],
                headers,
                raw.encode(),
                tolerance=app_settings.SIGNATURE_TOLERANCE,
            )
        except signing.SignatureError as error:
            raise exceptions.AuthenticationFailed(str(error), code=error.code) from None

    def repeated(self, request, seen):
        logger.info(
            "Dropped repeated webhook-id from %s (notification %s)",
            request.auth.label,
            seen.notification_id,
        )
        return Response(
            {"id": seen.notification_id, "duplicate": True}, status=status.HTTP_200_OK
        )
