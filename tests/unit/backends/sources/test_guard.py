"""What a remote source may be: the URL checks and the address checks that stop a render
URL from reaching inside the network (SSRF)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pixelmill.backends.sources.guard import check_addresses, host_allowed, parse_source
from pixelmill.errors import SourceRefused
from pixelmill.settings import SourcesSettings

POLICY = SourcesSettings(
    enabled=True,
    allowed_hosts=["img.example.org", "*.cdn.example.net", "tiles.example.org:8443"],
    allowed_buckets=["slides"],
)


def test_an_allowed_host_parses_into_what_is_fetched() -> None:
    source = parse_source("https://img.example.org/a/b.jpg?v=2", POLICY)
    assert (source.scheme, source.host, source.port, source.target) == (
        "https",
        "img.example.org",
        443,
        "/a/b.jpg?v=2",
    )


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "gopher://img.example.org/",
        "ftp://img.example.org/a.jpg",
        "//img.example.org/a.jpg",
        "https://evil.example.com/a.jpg",
        "https://img.example.org.evil.com/a.jpg",
        "https://cdn.example.net/a.jpg",  # the bare suffix of a *. entry
        "https://user:pw@img.example.org/a.jpg",
        "https://img.example.org@169.254.169.254/latest/meta-data",
        "https://img.example.org:8080/a.jpg",  # a port the entry does not name
        "http://127.0.0.1/a.jpg",
        "http://[::1]/a.jpg",
        "http://2130706433/a.jpg",  # 127.0.0.1 as one number
        "s3://other-bucket/a.jpg",
        "s3://slides/",
        "https://img.example.org:99999/a.jpg",
        "not a url",
    ],
)
def test_urls_off_the_allow_lists_are_refused(url: str) -> None:
    with pytest.raises(SourceRefused):
        parse_source(url, POLICY)


def test_sub_domains_ports_and_buckets_that_are_listed_pass() -> None:
    assert parse_source("https://eu.cdn.example.net/x.png", POLICY).host == "eu.cdn.example.net"
    assert parse_source("https://tiles.example.org:8443/t.jpg", POLICY).port == 8443
    assert parse_source("https://IMG.example.org./a.jpg", POLICY).host == "img.example.org"
    assert parse_source("https://img.example.org:443/a.jpg", POLICY).port == 443
    s3 = parse_source("s3://slides/2026/case%201.svs", POLICY)
    assert (s3.host, s3.target) == ("slides", "2026/case 1.svs")


def test_https_only_refuses_plain_http() -> None:
    strict = POLICY.model_copy(update={"https_only": True})
    with pytest.raises(SourceRefused):
        parse_source("http://img.example.org/a.jpg", strict)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.0.0.5",
        "172.16.3.4",
        "192.168.1.1",
        "169.254.169.254",  # cloud metadata
        "100.64.0.1",  # carrier-grade NAT
        "0.0.0.0",
        "224.0.0.1",
        "::1",
        "fe80::1",
        "fc00::1",
        "::ffff:127.0.0.1",  # IPv4-mapped loopback
        "::ffff:169.254.169.254",
        "2002:7f00:1::",  # 6to4 of 127.0.0.1
        "fe80::1%eth0",
    ],
)
def test_a_name_resolving_inside_the_network_is_refused(address: str) -> None:
    with pytest.raises(SourceRefused):
        check_addresses("img.example.org", ["93.184.215.14", address], [])


def test_public_addresses_pass_and_listed_networks_are_let_through() -> None:
    check_addresses(
        "img.example.org", ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"], []
    )
    check_addresses("imgsrv.local", ["10.1.2.7"], ["10.1.2.0/24"])
    with pytest.raises(SourceRefused):
        check_addresses("imgsrv.local", ["10.1.3.7"], ["10.1.2.0/24"])
    with pytest.raises(SourceRefused):
        check_addresses("nowhere.example.org", [], [])


@given(st.ip_addresses(v=4))
def test_every_ipv4_address_is_either_public_or_refused(address: object) -> None:
    text = str(address)
    try:
        check_addresses("h", [text], [])
    except SourceRefused:
        assert not address.is_global or address.is_multicast  # type: ignore[attr-defined]
    else:
        assert address.is_global  # type: ignore[attr-defined]


def test_ip_literals_match_only_exact_entries_never_wildcards() -> None:
    assert host_allowed("127.0.0.1", 8080, ["127.0.0.1:8080"])
    assert not host_allowed("127.0.0.1", None, ["*.0.0.1"])
