"""Typed domain errors. Each carries the Alibaba code, message and HTTP status of the spec.

They are turned into the Alibaba error body in exactly one place: ``app.wire.responses``.
"""

from __future__ import annotations


class ApiError(Exception):
    code: str = "Error.InternalError"
    message: str = "The request processing has failed due to some unknown error."
    status: int = 500

    def __init__(self, message: str | None = None, *, headers: dict[str, str] | None = None) -> None:
        if message is not None:
            self.message = message
        self.headers = headers or {}
        super().__init__(self.code)


class InternalError(ApiError):
    pass


class ParamMissing(ApiError):
    code = "InvalidParam.ParamMissing"
    message = "Please check if there is param empty in your imput."
    status = 403


class NoPermissionAccess(ApiError):
    code = "Error.NoPermissionAccess"
    message = "No permission to access our service."
    status = 403


class CompareFacesError(ApiError):
    code = "Error.CompareFacesError"
    message = "CompareFaces action failed due to internal error."
    status = 500


class ImageTypeEmpty(ApiError):
    code = "InvalidParam.ImageTypeEmpty"
    message = "The image type is empty."
    status = 400


class FacePicNotGiven(ApiError):
    code = "InvalidParam.FacePicNotGiven"
    message = "At least one of the two given images has a type of FacePic."
    status = 400


class ImageValuePatternError(ApiError):
    code = "InvalidParam.ImageValuePatternError"
    message = "The pattern of value of given image is not acceptable."
    status = 400

    def __init__(
        self, message: str | None = None, *, reason: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        # The contract's body stays as it is; ``reason`` (which limit, which setting) is for logs and
        # for the operator's own tools (``comparefaces compare``), never for the body.
        super().__init__(message, headers=headers)
        self.reason = reason


class ImageTypeInvalid(ApiError):
    code = "InvalidParam.ImageTypeInvalid"
    message = "The image type is not valid."
    status = 400


class NoFaceDetected(ApiError):
    code = "Error.NoFaceDetected"
    message = "No face detected from given images."
    status = 400


class ImageNotFound(ApiError):
    code = "InvalidParam.ImageNotFound"
    message = "No images founded with given image address"
    status = 400


# Gateway errors shared by every Alibaba RPC API.


class AccessKeyNotFound(ApiError):
    code = "InvalidAccessKeyId.NotFound"
    message = "Specified access key is not found."
    status = 404


class AccessKeyInactive(ApiError):
    code = "InvalidAccessKeyId.Inactive"
    message = "Specified access key is disabled."
    status = 400


# STS refusals: codes, messages and statuses from Alibaba's published gateway error tables (the
# faascmd error codes page and the public error-center list; see docs/api.md for the sources).


class SecurityTokenExpired(ApiError):
    code = "InvalidSecurityToken.Expired"
    message = "Specified SecurityToken is expired."
    status = 400


class SecurityTokenMalformed(ApiError):
    code = "InvalidSecurityToken.Malformed"
    message = "Specified SecurityToken is malformed."
    status = 400


class SecurityTokenMismatch(ApiError):
    code = "InvalidSecurityToken.MismatchWithAccessKey"
    message = "Specified SecurityToken mismatch with the AccessKey."
    status = 400


class MissingSecurityToken(ApiError):
    code = "MissingSecurityToken"
    message = "SecurityToken is mandatory for this action."
    status = 400


class SignatureDoesNotMatch(ApiError):
    code = "SignatureDoesNotMatch"
    status = 400

    def __init__(self, string_to_sign: str) -> None:
        super().__init__(
            f"Specified signature is not matched with our calculation. server string to sign is:{string_to_sign}"
        )


class IncompleteSignature(ApiError):
    code = "IncompleteSignature"
    status = 400

    def __init__(self, string_to_sign: str = "") -> None:
        super().__init__(
            f"The request signature does not conform to Aliyun standards. server string to sign is:{string_to_sign}"
        )


class TimestampExpired(ApiError):
    code = "InvalidTimeStamp.Expired"
    message = "Specified time stamp or date value is expired."
    status = 400


class SignatureNonceUsed(ApiError):
    code = "SignatureNonceUsed"
    message = "Specified signature nonce was used already."
    status = 400


class MissingParameter(ApiError):
    code = "MissingParameter"
    status = 400

    def __init__(self, name: str) -> None:
        super().__init__(f'The input parameter "{name}" that is mandatory for processing this request is not supplied.')


class ActionNotFound(ApiError):
    code = "InvalidAction.NotFound"
    message = "Specified api is not found, please check your url and method."
    status = 404


class InvalidVersion(ApiError):
    code = "InvalidVersion"
    message = "Specified parameter Version is not valid."
    status = 400


class Throttled(ApiError):
    code = "Throttling.User"
    message = "Request was denied due to user flow control."
    status = 429


class ServiceUnavailable(ApiError):
    code = "ServiceUnavailable"
    message = "The request has failed due to a temporary failure of the server."
    status = 503
