"""Which hosts and addresses an image URL may reach (server-side request forgery guard). Pure functions.

Only public unicast addresses are permitted. Refused, IPv4 or IPv6, whatever the spelling:

* loopback, private, link-local, CGNAT (100.64/10), unspecified, multicast/broadcast, reserved,
  benchmarking, documentation and IETF-protocol ranges, discard/ORCHID/SRv6 and site-local IPv6;
* IPv6 outside global unicast ``2000::/3``; IPv4 embedded in IPv6 (mapped ``::ffff:a.b.c.d``,
  compatible ``::a.b.c.d``, 6to4 ``2002::/16``, NAT64 ``64:ff9b::/96``) is judged as the IPv4 it
  embeds; Teredo (``2001::/32``) is refused whole;
* cloud metadata and platform endpoints: AWS, GCP, Azure, Oracle, DigitalOcean, Hetzner, OpenStack,
  Huawei and Tencent (all 169.254.x, link-local), AWS and GCP over IPv6 (fd00:ec2::254, fd20:ce::254,
  unique-local), Alibaba (100.100.100.200, CGNAT), Azure's WireServer (168.63.129.16, a public
  address), IBM Cloud's service networks (161.26.0.0/16, 166.8.0.0/14) and the metadata host names.
  These, the unspecified and the multicast/broadcast addresses are refused even when an operator
  allows a network that contains them;
* host names ``localhost``, ``*.localhost`` and the metadata names;
* any numeric host that is not a canonical dotted quad: ``2130706433``, ``0x7f.1``,
  ``017700000001``, ``127.000.000.001``, ``1.2.3.0x4``... Such spellings are read as IPv4 by some
  resolvers and URL parsers and never by others, so they are refused even when the address they
  denote would be allowed.

Operators may permit more with an allow list (``COMPAREFACES_FETCH_ALLOW_NETWORKS``): CIDRs (or
single addresses), and exact host names whose resolved addresses are then all accepted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network

FORBIDDEN_V4 = tuple(
    IPv4Network(net)
    for net in (
        "0.0.0.0/8",  # "this network"; 0.0.0.0 reaches the local host on Linux
        "10.0.0.0/8",
        "100.64.0.0/10",  # CGNAT; also Alibaba metadata 100.100.100.200
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local; AWS/GCP/Azure/OpenStack metadata 169.254.169.254
        "172.16.0.0/12",
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # TEST-NET-1
        "192.88.99.0/24",  # 6to4 relay anycast (deprecated)
        "192.168.0.0/16",
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # TEST-NET-2
        "203.0.113.0/24",  # TEST-NET-3
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, and the broadcast 255.255.255.255
    )
)
GLOBAL_UNICAST_V6 = IPv6Network("2000::/3")
FORBIDDEN_V6 = tuple(
    IPv6Network(net)
    for net in (
        "2001::/23",  # IETF protocol assignments: Teredo 2001::/32, benchmarking, ORCHID...
        "2001:db8::/32",  # documentation
        "3fff::/20",  # documentation
    )
)
NAT64_V6 = IPv6Network("64:ff9b::/96")

METADATA_ADDRESSES = frozenset(
    ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, Oracle, DigitalOcean, Hetzner, OpenStack, Huawei
        "169.254.170.2",  # AWS ECS task metadata
        "169.254.169.123",  # AWS time sync
        "169.254.169.253",  # AWS / Azure DNS
        "169.254.0.23",  # Tencent Cloud
        "fd00:ec2::254",  # AWS IPv6 IMDS
        "fd00:ec2::23",  # AWS IPv6 time sync
        "fd20:ce::254",  # GCP IPv6 metadata
        "100.100.100.200",  # Alibaba Cloud
        "168.63.129.16",  # Azure WireServer / platform DNS and health probes (a public address)
        "192.0.0.192",  # Oracle Cloud legacy metadata
    )
)
# Public-looking ranges that are a cloud's own platform networks, refused like private ones.
PLATFORM_V4 = (
    IPv4Network("161.26.0.0/16"),  # IBM Cloud service network (classic infrastructure services)
    IPv4Network("166.8.0.0/14"),  # IBM Cloud private service endpoints
)
# Refused even inside an operator's allowed networks.
ALWAYS_FORBIDDEN = (
    IPv4Network("0.0.0.0/8"),
    IPv4Network("224.0.0.0/4"),
    IPv4Network("255.255.255.255/32"),
    IPv6Network("::/128"),
    IPv6Network("ff00::/8"),
)
FORBIDDEN_NAMES = frozenset(
    {
        "localhost",
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.tencentyun.com",
        "metadata.platformequinix.com",
        "metadata.packet.net",
        "api.metadata.cloud.ibm.com",
    }
)
FORBIDDEN_NAME_SUFFIXES = (".localhost",)

DOTTED_QUAD = re.compile(r"^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$")
NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|\d+)$")


def normalize_host(host: str) -> str:
    """Lower case, without IPv6 brackets and without one trailing dot (``localhost.`` is ``localhost``)."""
    host = host.strip().lower()
    if host.startswith("[") and host.endswith("]"):
        return host[1:-1]
    return host[:-1] if host.endswith(".") else host


def looks_numeric(host: str) -> bool:
    """Whether a (normalized) host ends in a numeric label, so that some parser reads it as IPv4."""
    last = host.rsplit(".", 1)[-1]
    return bool(NUMERIC_LABEL.match(last))


def ip_literal(host: str) -> IPAddress | None:
    """The address of a canonical IP literal host (dotted quad or IPv6), else None.

    Raises ``ValueError`` for numeric spellings that are not a canonical dotted quad.
    """
    host = normalize_host(host)
    if ":" in host:
        return IPv6Address(host)  # ValueError when malformed; zone ids ("%eth0") only on link-local
    if DOTTED_QUAD.match(host):
        return IPv4Address(host)
    if looks_numeric(host):
        raise ValueError(f"non-canonical numeric host {host!r}")
    return None


def embedded_ipv4(address: IPv6Address) -> IPv4Address | None:
    """The IPv4 address that an IPv4-mapped/compatible, 6to4 or NAT64 IPv6 address stands for."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    packed = address.packed
    if address in NAT64_V6 or (packed[:12] == bytes(12) and int(address) > 1):
        return IPv4Address(packed[12:])
    return None


def unwrap(address: IPAddress) -> IPAddress:
    """IPv4 stand-ins in IPv6 become plain IPv4; others unchanged (scope id dropped)."""
    if isinstance(address, IPv6Address):
        embedded = embedded_ipv4(address)
        if embedded is not None:
            return embedded
        if address.scope_id:
            return IPv6Address(address.packed)
    return address


def is_public(address: IPAddress) -> bool:
    """Whether an address is public unicast, the only kind an unlisted URL may reach."""
    address = unwrap(address)
    if address in METADATA_ADDRESSES:
        return False
    if isinstance(address, IPv4Address):
        return address.is_global and not any(address in net for net in (*FORBIDDEN_V4, *PLATFORM_V4))
    return (
        address in GLOBAL_UNICAST_V6
        and not any(address in net for net in FORBIDDEN_V6)
        and not (address.is_private or address.is_reserved or address.is_multicast)
    )


def is_forbidden_name(host: str) -> bool:
    host = normalize_host(host)
    return host in FORBIDDEN_NAMES or host.endswith(FORBIDDEN_NAME_SUFFIXES)


@dataclass(frozen=True)
class AddressPolicy:
    """The public-only rule plus an operator's allowed networks and host names."""

    networks: tuple[IPNetwork, ...] = ()
    names: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def parse(cls, allow: str) -> AddressPolicy:
        """``"127.0.0.1/32, 10.1.0.0/16, images.corp"`` -> policy. Raises ValueError on bad entries."""
        networks: list[IPNetwork] = []
        names: set[str] = set()
        for raw in allow.split(","):
            entry = normalize_host(raw)
            if not entry:
                continue
            if "/" in entry or ":" in entry or DOTTED_QUAD.match(entry):
                networks.append(ip_network(entry, strict=False))
            elif looks_numeric(entry) or not re.match(r"^[a-z0-9_]([a-z0-9_.-]*[a-z0-9_])?$", entry):
                raise ValueError(f"not a CIDR or host name: {raw.strip()!r}")
            else:
                names.add(entry)
        return cls(tuple(networks), frozenset(names))

    def name_allowed(self, host: str) -> bool:
        return normalize_host(host) in self.names

    def address_allowed(self, address: IPAddress, *, host_allowed: bool = False) -> bool:
        """Public addresses; or, unless always forbidden, ones in an allowed network or of an allowed name."""
        address = unwrap(address)
        if address in METADATA_ADDRESSES or any(address in net for net in ALWAYS_FORBIDDEN):
            return False
        if host_allowed or any(address in net for net in self.networks):
            return True
        return is_public(address)

    def permitted(self, host: str, addresses: list[IPAddress]) -> list[IPAddress]:
        """The resolved ``addresses`` of ``host`` that may be connected to, in order, without repeats."""
        host_allowed = self.name_allowed(host)
        chosen: list[IPAddress] = []
        for address in addresses:
            plain = unwrap(address)
            if plain not in chosen and self.address_allowed(plain, host_allowed=host_allowed):
                chosen.append(plain)
        return chosen
