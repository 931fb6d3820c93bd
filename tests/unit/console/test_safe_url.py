"""Subscriber URLs as the admin side shows them: no credentials, no query values."""

from relay.admin.ops import safe_url


def test_credentials_and_query_values_never_show() -> None:
    assert safe_url("https://user:pa55@crm.example.com:8443/hooks?token=s3cr3t&x=1#frag") == (
        "https://crm.example.com:8443/hooks?token=***&x=***"
    )
    assert safe_url("http://[::1]:9000/h") == "http://[::1]:9000/h"
    assert safe_url("https://crm.example.com/hooks") == "https://crm.example.com/hooks"
