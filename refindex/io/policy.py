"""The source policy: which sources a sidecar may make refindex read, checked before any
request to them and before following any redirect.

A sidecar is data, often written by someone else, and every URL in it is a request refindex
would send with the user's credentials. By default a source may be ``s3://``, ``https://``
or ``http://`` (and a local file when the sidecar itself is a local file), never an address
that hands out cloud credentials: link-local addresses (169.254.0.0/16, fe80::/10, which
include the AWS, Azure, GCP and Oracle metadata services at 169.254.169.254), AWS's IPv6
metadata address fd00:ec2::254, Alibaba's 100.100.100.200, and the names
``metadata.google.internal``, ``metadata.goog``, ``metadata`` and ``instance-data`` that
resolve to them. Loopback (127.0.0.1, ``localhost``) is allowed: it is where local test and
development servers live.

``ReadOptions.source_hosts`` bounds the networks HTTP(S) sources may be on: ``"public"``,
``"private"`` (and public) or ``"any"`` (loopback too). ``open_store`` sets it, unless given,
from the host a remote sidecar came from, so that a sidecar from the internet cannot make
refindex read from this machine's or its network's services, while an archive's own sidecar
(on the archive's host) can name the archive's other objects. Hosts named by
``allowed_sources`` or ``endpoint_url`` are always allowed. IP literals and ``localhost`` are
checked here; other host names by the addresses they resolve to, in the connector's resolver
(``check_resolved``), before any connection (which also defeats a name re-bound between
resolutions: every connection's addresses are checked).

``ReadOptions.allowed_sources`` replaces the default with a list of URL prefixes: a source
must start with one of them. A metadata address is read only when a prefix names that host
itself (``http://169.254.169.254/``), never through a broad prefix like ``http://``.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
import threading
from collections.abc import Iterable
from urllib.parse import urlsplit

from refindex.errors import SourcePolicyError
from refindex.io.options import HOST_CLASSES, ReadOptions
from refindex.io.s3 import endpoint_url
from refindex.io.urls import local_path, scheme_of

_LINK_LOCAL = (ipaddress.ip_network("169.254.0.0/16"), ipaddress.ip_network("fe80::/10"))
_METADATA_ADDRESSES = frozenset(
    {ipaddress.ip_address("fd00:ec2::254"), ipaddress.ip_address("100.100.100.200")}
)
_METADATA_NAMES = frozenset(
    {"metadata.google.internal", "metadata.goog", "metadata", "instance-data",
     "instance-data.ec2.internal"}
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_PRIVATE = tuple(ipaddress.ip_network(n) for n in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7"))
# The class of a host, as the rank of the least ``source_hosts`` value that allows it.
_RANK = {name: rank for rank, name in enumerate(HOST_CLASSES)}
_HTTP = ("http", "https")
_APPROVED_MAX = 100_000  # URLs remembered as allowed per policy, then forgotten at once


class SourcePolicy:
    """The sources one set of options allows; ``check_all`` raises ``SourcePolicyError``."""

    def __init__(self, allowed_sources: tuple[str, ...] = (), local_sources: bool = True,
                 source_hosts: str | None = None, trusted_hosts: tuple[str, ...] = ()) -> None:
        self.allowed = tuple(_normalize(prefix, keep_slash=True) for prefix in allowed_sources)
        self.local_sources = local_sources
        self.source_hosts = source_hosts or "any"
        # Hosts that a prefix names exactly: the only way to read a metadata address.
        self._named_hosts = frozenset(
            _canonical_host(urlsplit(p).hostname or "") for p in self.allowed
            if p.startswith(("http://", "https://"))
        )
        # ... and hosts the user configured (the S3 endpoint): never refused for their class.
        self._trusted_hosts = self._named_hosts | {_canonical_host(h) for h in trusted_hosts}
        self._approved: set[str] = set()
        self._lock = threading.Lock()

    def check_all(self, urls: Iterable[str]) -> None:
        """Raise ``SourcePolicyError`` for the first of ``urls`` the policy refuses."""
        unknown = set(urls) - self._approved
        for url in unknown:
            self.check(url)
        if unknown:
            with self._lock:
                if len(self._approved) > _APPROVED_MAX:
                    self._approved.clear()
                self._approved |= unknown

    def check(self, url: str) -> None:
        """Raise ``SourcePolicyError`` naming ``url`` and the rule if it may not be read."""
        reason = self.refusal(url)
        if reason is not None:
            raise SourcePolicyError(f"{url}: refused by the source policy: {reason}")

    def refusal(self, url: str) -> str | None:
        """The rule that refuses ``url`` as a source, or None if it may be read."""
        # Unknown schemes and file:// URLs of other hosts are refused here, in their own words.
        scheme = scheme_of(url)
        if scheme == "file":
            local_path(url)
        if self.allowed:
            if not any(_under(_normalize(url), prefix) for prefix in self.allowed):
                return f"it is under none of allowed_sources {list(self.allowed)}"
        elif scheme == "file" and not self.local_sources:
            return (
                "a local file named by a sidecar that is not itself a local file; allow a "
                "directory explicitly with allowed_sources=['file:///that/directory/', ...]"
            )
        return self._address_refusal(url) if scheme in _HTTP else None

    def check_redirect(self, source: str, target: str) -> None:
        """Raise ``SourcePolicyError`` if ``source`` may not be redirected to ``target``.

        A redirect is chosen by a server the user let refindex talk to, so it need not be
        under ``allowed_sources``; it must be HTTP(S) and not a metadata address.
        """
        shown = target.split("?", 1)[0]
        scheme = urlsplit(target).scheme.lower()
        if scheme not in _HTTP:
            reason = f"redirects may only lead to http:// or https://, not {scheme or 'a path'}"
        else:
            reason = self._address_refusal(target)
        if reason is not None:
            raise SourcePolicyError(
                f"{source}: redirected to {shown}, refused by the source policy: {reason}"
            )

    def check_resolved(self, host: str, addresses: Iterable[str]) -> None:
        """Raise ``SourcePolicyError`` if host name ``host``, resolving to ``addresses``, may
        not be connected to (a metadata address, or a network the policy does not allow)."""
        host = _canonical_host(host)
        for address in addresses:
            reason = self._host_refusal(host, _canonical_host(address))
            if reason is not None:
                raise SourcePolicyError(f"{host} resolves to {address}: refused by the source "
                                        f"policy before connecting: {reason}")

    def _address_refusal(self, url: str) -> str | None:
        host = _canonical_host(urlsplit(url).hostname or "")
        return self._host_refusal(host, host)

    def _host_refusal(self, host: str, address: str) -> str | None:
        """Why ``host`` (at ``address``: itself, or what it resolved to) may not be read."""
        if host in self._trusted_hosts:
            return None
        if is_metadata_host(address) and host not in self._named_hosts:
            return (
                f"{address} is a link-local or cloud-metadata address, read only when "
                f"allowed_sources names it (e.g. 'http://{host}/')"
            )
        found = host_class(address)
        if found is not None and _RANK[found] > _RANK[self.source_hosts]:
            network = "loopback" if found == "any" else "private-network"
            return (
                f"{address} is a {network} address and sources may only be on "
                f"{self.source_hosts} hosts (source_hosts={self.source_hosts!r}: by default a "
                "remote sidecar names sources no more internal than the host it came from); "
                f"allow it with source_hosts={found!r} (REFINDEX_SOURCE_HOSTS) or with "
                f"allowed_sources=['http://{host}/']"
            )
        return None


@functools.lru_cache(maxsize=64)
def source_policy(allowed_sources: tuple[str, ...], local_sources: bool,
                  source_hosts: str | None = None,
                  trusted_hosts: tuple[str, ...] = ()) -> SourcePolicy:
    """The process's policy object for these settings (it remembers the URLs it allowed)."""
    return SourcePolicy(allowed_sources, local_sources, source_hosts, trusted_hosts)


def policy_for(options: ReadOptions) -> SourcePolicy:
    """The source policy of ``options``."""
    configured = endpoint_url(options)
    endpoint = urlsplit(configured).hostname if configured else None
    return source_policy(options.allowed_sources, options.local_sources, options.source_hosts,
                         (endpoint,) if endpoint else ())


def check_sources(options: ReadOptions, urls: Iterable[str]) -> None:
    """Raise ``SourcePolicyError`` if the source policy of ``options`` refuses any of ``urls``."""
    policy_for(options).check_all(urls)


def host_class(host: str) -> str | None:
    """``"public"``, ``"private"`` or ``"any"`` (loopback): the least ``source_hosts`` that
    allows ``host`` (an IP address in any spelling, or ``localhost``); None for other names,
    whose class only their addresses tell."""
    host = _canonical_host(host)
    if host == "localhost" or host.endswith(".localhost"):
        return "any"
    address = _address(host)
    if address is None:
        return None
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_loopback or address.is_unspecified:
        return "any"
    return "private" if any(address in net for net in _PRIVATE) else "public"


def sidecar_host_class(location: str, options: ReadOptions) -> str:
    """The ``source_hosts`` a sidecar at ``location`` (a URL) may name by default: the class
    of its own host (resolved if a name; ``"public"`` when that fails), or of the S3 endpoint
    for an ``s3://`` sidecar (AWS itself: public)."""
    if location.lower().startswith("s3://"):
        location = endpoint_url(options) or ""
        if not location:
            return "public"
    host = urlsplit(location).hostname or ""
    found = host_class(host)
    if found is not None:
        return found
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return "public"
    classes = [host_class(str(info[4][0])) or "public" for info in infos]
    # A name resolving to several classes counts as the least internal of them.
    return min(classes, key=_RANK.__getitem__, default="public")


def is_metadata_host(host: str) -> bool:
    """True for link-local and cloud-metadata addresses and names (any spelling of them)."""
    host = _canonical_host(host)
    if host in _METADATA_NAMES:
        return True
    address = _address(host)
    if address is None:
        return False
    if address.version == 6:
        embedded = address.ipv4_mapped or (
            ipaddress.IPv4Address(int(address) & 0xFFFFFFFF) if address in _NAT64 else None
        )
        if embedded is not None:
            address = embedded
    return address in _METADATA_ADDRESSES or any(address in net for net in _LINK_LOCAL)


def _canonical_host(host: str) -> str:
    """A host as compared: lower case, no trailing dot, IP literals in their usual form."""
    host = host.strip("[]").lower().rstrip(".")
    address = _address(host)
    return host if address is None else str(address)


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The IP address ``host`` spells, including forms like ``2852039166`` or ``0xa9.0xfe.1``
    that connecting would accept; None for names."""
    host = host.split("%", 1)[0]  # an IPv6 zone
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if not host or not all(c in "0123456789abcdefx." for c in host) or host.strip(".") != host:
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def _normalize(url: str, keep_slash: bool = False) -> str:
    """``url`` as prefixes are compared: local paths as ``file://`` URLs, scheme and host in
    lower case."""
    if scheme_of(url) == "file":
        path = local_path(url)
        slash = "/" if keep_slash and url.endswith("/") and not path.endswith("/") else ""
        return f"file://{path}{slash}"
    scheme, rest = url.split("://", 1)
    host, sep, path = rest.partition("/")
    return f"{scheme.lower()}://{host.lower()}{sep}{path}"


def _under(url: str, prefix: str) -> bool:
    """True if ``url`` starts with ``prefix`` at a boundary: ``s3://b/dir`` covers
    ``s3://b/dir/x`` but not ``s3://b/directory``."""
    if not url.startswith(prefix):
        return False
    return len(url) == len(prefix) or prefix.endswith("/") or url[len(prefix)] in "/?#:"
