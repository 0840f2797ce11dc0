"""One health check's result: a status, whether it is required, one line of detail and its data."""

from typing import Any

from trading_data.db.url import mask_password

OK, WARN, FAIL = "OK", "WARN", "FAIL"


def check_result(status: str, required: bool, detail: str, **data: Any) -> dict[str, Any]:
    return {"status": status, "required": required, "detail": detail, **data}


def error_text(exc: BaseException, url: str | None = None) -> str:
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    if url:
        text = text.replace(url, mask_password(url))
    return text[:300]
