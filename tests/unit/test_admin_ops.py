"""Subscriber URLs as the admin side shows them: no credentials, no query values."""

from relay.urls import masked


def test_credentials_and_query_values_never_show() -> None:
    assert masked("https://user:pa55@crm.example.com:8443/hooks?token=s3cr3t&x=1#frag") == (
        "https://crm.example.com:8443/hooks?token=***&x=***"
    )
    assert masked("http://[::1]:9000/h") == "http://[::1]:9000/h"
    assert masked("https://crm.example.com/hooks") == "https://crm.example.com/hooks"
