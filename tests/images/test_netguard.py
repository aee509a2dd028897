"""Address classification for image URL fetches: pure functions, no network."""

from __future__ import annotations

from ipaddress import ip_address

import pytest

from app.images.netguard import AddressPolicy, embedded_ipv4, ip_literal, is_forbidden_name, is_public

FORBIDDEN = [
    "127.0.0.1",
    "127.255.255.254",
    "0.0.0.0",
    "0.1.2.3",
    "10.0.0.1",
    "172.16.0.1",
    "172.31.255.255",
    "192.168.1.1",
    "169.254.0.1",
    "169.254.169.254",  # AWS / GCP / Azure metadata
    "100.64.0.1",
    "100.100.100.200",  # Alibaba metadata
    "168.63.129.16",  # Azure WireServer (a public address)
    "::ffff:168.63.129.16",
    "2002:a83f:8110::1",  # 6to4 of 168.63.129.16
    "169.254.0.23",  # Tencent metadata
    "161.26.0.10",  # IBM Cloud service network
    "166.9.0.1",  # IBM Cloud private service endpoints
    "fd20:ce::254",  # GCP IPv6 metadata
    "fd00:ec2::23",  # AWS IPv6 time sync
    "192.0.0.8",
    "192.0.2.1",
    "198.18.0.1",
    "198.51.100.7",
    "203.0.113.9",
    "224.0.0.1",
    "239.255.255.250",
    "240.0.0.1",
    "255.255.255.255",
    "::",
    "::1",
    "::ffff:127.0.0.1",  # IPv4-mapped
    "::ffff:169.254.169.254",
    "::127.0.0.1",  # IPv4-compatible
    "::10.0.0.1",
    "2002:7f00:1::1",  # 6to4 of 127.0.0.1
    "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254
    "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
    "2001:db8::1",
    "3fff::1",
    "fc00::1",
    "fd00:ec2::254",  # AWS metadata over IPv6
    "fe80::1",
    "fe80::1%eth0",
    "fec0::1",
    "ff02::1",
    "100::1",
    "5f00::1",
]
PUBLIC = [
    "8.8.8.8",
    "1.1.1.1",
    "93.184.216.34",
    "100.63.255.255",
    "100.128.0.1",
    "172.32.0.1",
    "2606:4700:4700::1111",
    "2a00:1450:4001:80b::200e",
    "::ffff:8.8.8.8",
    "2002:808:808::1",  # 6to4 of 8.8.8.8
    "64:ff9b::808:808",  # NAT64 of 8.8.8.8
]


@pytest.mark.parametrize("address", FORBIDDEN)
def test_forbidden_addresses(address: str) -> None:
    assert not is_public(ip_address(address))
    assert not AddressPolicy().address_allowed(ip_address(address))


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses(address: str) -> None:
    assert is_public(ip_address(address))


@pytest.mark.parametrize(
    "host",
    [
        "2130706433",
        "0x7f.1",
        "0x7f000001",
        "017700000001",
        "0177.0.0.1",
        "127.1",
        "127.0.1",
        "127.000.000.001",
        "1.2.3.0x4",
        "1.2.3.4.5",
        "256.0.0.1",
        "0",
        "0x",
        "foo.123",
        "[::1",
        "[zz::1]",
    ],
)
def test_non_canonical_numeric_hosts_are_refused(host: str) -> None:
    with pytest.raises(ValueError):
        ip_literal(host)


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("127.0.0.1.", "127.0.0.1"),
        ("8.8.8.8", "8.8.8.8"),
        ("[::1]", "::1"),
        ("[::FFFF:7F00:1]", "::ffff:127.0.0.1"),
        ("::1", "::1"),
    ],
)
def test_canonical_literals(host: str, expected: str) -> None:
    assert ip_literal(host) == ip_address(expected)


@pytest.mark.parametrize("host", ["example.com", "images.example.com.", "xn--bcher-kva.example", "a1.b2", "localhost"])
def test_names_are_not_literals(host: str) -> None:
    assert ip_literal(host) is None


def test_embedded_ipv4() -> None:
    assert embedded_ipv4(ip_address("::ffff:10.1.2.3")) == ip_address("10.1.2.3")  # type: ignore[arg-type]
    assert embedded_ipv4(ip_address("2002:0a01:0203::")) == ip_address("10.1.2.3")  # type: ignore[arg-type]
    assert embedded_ipv4(ip_address("64:ff9b::10.1.2.3")) == ip_address("10.1.2.3")  # type: ignore[arg-type]
    assert embedded_ipv4(ip_address("::10.1.2.3")) == ip_address("10.1.2.3")  # type: ignore[arg-type]
    assert embedded_ipv4(ip_address("::1")) is None  # type: ignore[arg-type]
    assert embedded_ipv4(ip_address("2606:4700::1")) is None  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "host",
    [
        "localhost",
        "LOCALHOST",
        "localhost.",
        "foo.localhost",
        "a.b.localhost.",
        "metadata.google.internal",
        "metadata",
        "metadata.tencentyun.com",
        "api.metadata.cloud.ibm.com",
        "[::1]",
    ],
)
def test_forbidden_names(host: str) -> None:
    assert is_forbidden_name(host) or ip_literal(host) is not None


@pytest.mark.parametrize("host", ["example.com", "localhost.example.com", "mylocalhost", "google.internal.example"])
def test_ordinary_names(host: str) -> None:
    assert not is_forbidden_name(host)


def test_policy_parse_and_allow() -> None:
    policy = AddressPolicy.parse(" 127.0.0.1/32, 10.1.0.0/16 ,fd12::/16, Images.Corp., 192.168.5.5 ,")
    assert policy.name_allowed("images.corp") and policy.name_allowed("IMAGES.CORP.")
    assert not policy.name_allowed("other.corp")
    for allowed in ["127.0.0.1", "::ffff:127.0.0.1", "10.1.200.3", "fd12::5", "192.168.5.5", "8.8.8.8"]:
        assert policy.address_allowed(ip_address(allowed)), allowed
    for refused in ["127.0.0.2", "10.2.0.1", "192.168.5.6", "::1", "169.254.169.254"]:
        assert not policy.address_allowed(ip_address(refused)), refused


def test_metadata_unspecified_and_multicast_stay_refused_when_allowed() -> None:
    policy = AddressPolicy.parse("0.0.0.0/0, ::/0")
    assert policy.address_allowed(ip_address("10.0.0.1"))
    metadata = ["169.254.169.254", "100.100.100.200", "fd00:ec2::254", "168.63.129.16", "fd20:ce::254", "169.254.0.23"]
    for refused in [*metadata, "0.0.0.0", "::", "224.0.0.1", "ff02::1"]:
        assert not policy.address_allowed(ip_address(refused)), refused
    assert not AddressPolicy().address_allowed(ip_address("169.254.169.254"), host_allowed=True)


def test_permitted_picks_allowed_addresses_in_order() -> None:
    resolved = [ip_address(a) for a in ["10.0.0.1", "8.8.8.8", "::ffff:8.8.8.8", "2606:4700::1", "127.0.0.1"]]
    assert AddressPolicy().permitted("a.example", resolved) == [ip_address("8.8.8.8"), ip_address("2606:4700::1")]
    assert AddressPolicy().permitted("a.example", resolved[:1]) == []
    by_name = AddressPolicy.parse("a.example")
    assert by_name.permitted("a.example", resolved[:1]) == [ip_address("10.0.0.1")]
    assert by_name.permitted("b.example", resolved[:1]) == []


@pytest.mark.parametrize("entry", ["not a host", "0x7f.1", "10.0.0.0/33", "1.2.3.4/8/9"])
def test_policy_rejects_bad_entries(entry: str) -> None:
    with pytest.raises(ValueError):
        AddressPolicy.parse(entry)
