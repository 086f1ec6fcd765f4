"""Xero's error bodies.

The accounting API answers 400s in its ApiException shape (``ErrorNumber``/``Type``/``Message``; the
numbers 10, 14 and 16 are the ones public fixtures show), while the gateway in front of it answers
401/403 (and, in this emulator, the other gateway statuses) in the RFC 7807 problem shape Xero uses
there (``{"Type": null, "Title": "Unauthorized", "Status": 401, "Detail": "AuthenticationUnsuccessful"}``).
"""

import uuid

SERVER_ERROR_MESSAGE = (
    "An error occurred in Xero. Check the API Status page http://status.developer.xero.com for current "
    "service status. Contact the API support team at api@xero.com for more assistance."
)


def validation_exception(elements: list[dict]) -> dict:
    return {
        "ErrorNumber": 10,
        "Type": "ValidationException",
        "Message": "A validation exception occurred",
        "Elements": elements,
    }


def post_data_invalid(message: str) -> dict:
    return {"ErrorNumber": 14, "Type": "PostDataInvalidException", "Message": message}


def query_parse(message: str) -> dict:
    return {"ErrorNumber": 16, "Type": "QueryParseException", "Message": message}


def server_error() -> dict:
    return {"ErrorNumber": 500, "Type": "UnknownErrorException", "Message": SERVER_ERROR_MESSAGE}


def problem(status: int, title: str, detail: str) -> dict:
    return {
        "Type": None,
        "Title": title,
        "Status": status,
        "Detail": detail,
        "Instance": str(uuid.uuid4()),
        "Extensions": {},
    }


def unauthorized() -> dict:
    return problem(401, "Unauthorized", "AuthenticationUnsuccessful")


def forbidden() -> dict:
    return problem(403, "Forbidden", "AuthorizationUnsuccessful")


def not_found() -> dict:
    # The SDK's NotFoundException reads "The resource you're looking for cannot be found".
    return problem(404, "NotFound", "The resource you're looking for cannot be found")


def rate_limited(problem_name: str) -> dict:
    return problem(429, "Too Many Requests", f"Rate limit exceeded: {problem_name}")


def unavailable() -> dict:
    return problem(503, "Service Unavailable", "The Xero API is temporarily unavailable. Please try again.")
