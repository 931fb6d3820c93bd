"""URLs shown by relay check, the AsyncAPI document and the admin side: no credentials, no
query values."""

from relay.urls import masked, public_parts, without_query


def test_credentials_query_and_fragment_never_show() -> None:
    url = "https://user:pa55@crm.example.com:8443/hooks/in?token=s3cr3t#frag"
    assert without_query(url) == "https://crm.example.com:8443/hooks/in"
    assert public_parts(url) == ("https", "crm.example.com:8443", "/hooks/in")


def test_an_ipv6_host_keeps_its_brackets() -> None:
    assert without_query("http://u:p@[::1]:9000/h?k=v") == "http://[::1]:9000/h"
    assert public_parts("http://[fe80::1]/") == ("http", "[fe80::1]", "/")


def test_the_admin_side_masks_query_values() -> None:
    assert masked("https://user:pa55@crm.example.com:8443/hooks?token=s3cr3t&x=1#frag") == (
        "https://crm.example.com:8443/hooks?token=***&x=***"
    )
    assert masked("http://[::1]:9000/h") == "http://[::1]:9000/h"
    assert masked("https://crm.example.com/hooks") == "https://crm.example.com/hooks"
