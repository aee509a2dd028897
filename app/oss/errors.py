"""OSS's own errors: an ``<Error>`` XML body with Code, Message, RequestId, HostId (and, for some
codes, the fields OSS adds), an ``x-oss-request-id`` header. Messages are those of Alibaba OSS."""

from __future__ import annotations

from xml.sax.saxutils import escape

from starlette.responses import Response

XML_TYPE = "application/xml"


class OssError(Exception):
    code = "InternalError"
    message = "We encountered an internal error. Please try again."
    status = 500

    def __init__(self, message: str | None = None, **fields: str) -> None:
        if message is not None:
            self.message = message
        self.fields = fields  # extra elements after HostId, e.g. OSSAccessKeyId, StringToSign
        super().__init__(self.code)


class AccessDenied(OssError):
    code = "AccessDenied"
    message = "You have no right to access this object because of bucket acl."
    status = 403


class InvalidArgument(OssError):
    code = "InvalidArgument"
    message = "Authorization header is invalid."
    status = 400


class InvalidAccessKeyId(OssError):
    code = "InvalidAccessKeyId"
    message = "The OSS Access Key Id you provided does not exist in our records."
    status = 403


class InvalidSecurityToken(OssError):
    code = "InvalidSecurityToken"
    message = "The security token you provided is invalid."
    status = 403


class SecurityTokenExpired(OssError):
    code = "SecurityTokenExpired"
    message = "The security token you provided has expired."
    status = 403


class SignatureDoesNotMatch(OssError):
    code = "SignatureDoesNotMatch"
    message = (
        "The request signature we calculated does not match the signature you provided. "
        "Check your key and signing method."
    )
    status = 403


class RequestTimeTooSkewed(OssError):
    code = "RequestTimeTooSkewed"
    message = "The difference between the request time and the current time is too large."
    status = 403


class EntityTooLarge(OssError):
    code = "EntityTooLarge"
    message = "Your proposed upload exceeds the maximum allowed size."
    status = 400


class InvalidDigest(OssError):
    code = "InvalidDigest"
    message = "The Content-MD5 you specified is not valid."
    status = 400


class InvalidObjectName(OssError):
    code = "InvalidObjectName"
    message = "The specified object is not valid."
    status = 400


class RequestTimeout(OssError):
    code = "RequestTimeout"
    message = "Your socket connection to the server was not read from or written to within the timeout period."
    status = 400


class ServiceUnavailable(OssError):
    code = "ServiceUnavailable"
    message = "Thread pool is almost full, please retry later"
    status = 503


def error_body(error: OssError, *, request_id: str, host_id: str) -> str:
    elements = {"Code": error.code, "Message": error.message, "RequestId": request_id, "HostId": host_id}
    elements.update(error.fields)
    inner = "".join(f"  <{name}>{escape(value)}</{name}>\n" for name, value in elements.items())
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<Error>\n{inner}</Error>\n'


def error_response(error: OssError, *, request_id: str, host_id: str, head: bool = False) -> Response:
    headers = {"x-oss-request-id": request_id, "server": "AliyunOSS"}
    if head:  # a HEAD answer has no body
        return Response(status_code=error.status, headers=headers)
    body = error_body(error, request_id=request_id, host_id=host_id)
    return Response(body, status_code=error.status, media_type=XML_TYPE, headers=headers)
