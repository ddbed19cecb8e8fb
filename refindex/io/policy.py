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
development servers live. A host *name* that a DNS server maps to a metadata address is not
caught here; only the connection can see that.

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
from refindex.io.options import ReadOptions
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
_HTTP = ("http", "https")
_APPROVED_MAX = 100_000  # URLs remembered as allowed per policy, then forgotten at once


class SourcePolicy:
    """The sources one set of options allows; ``check_all`` raises ``SourcePolicyError``."""

    def __init__(self, allowed_sources: tuple[str, ...] = (), local_sources: bool = True) -> None:
        self.allowed = tuple(_normalize(prefix, keep_slash=True) for prefix in allowed_sources)
        self.local_sources = local_sources
        # Hosts that a prefix names exactly: the only way to read a metadata address.
        self._named_hosts = frozenset(
            _canonical_host(urlsplit(p).hostname or "") for p in self.allowed
            if p.startswith(("http://", "https://"))
        )
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

    def _address_refusal(self, url: str) -> str | None:
        host = _canonical_host(urlsplit(url).hostname or "")
        if not is_metadata_host(host) or host in self._named_hosts:
            return None
        return (
            f"{host} is a link-local or cloud-metadata address, read only when "
            f"allowed_sources names it (e.g. 'http://{host}/')"
        )


@functools.lru_cache(maxsize=64)
def source_policy(allowed_sources: tuple[str, ...], local_sources: bool) -> SourcePolicy:
    """The process's policy object for these settings (it remembers the URLs it allowed)."""
    return SourcePolicy(allowed_sources, local_sources)


def check_sources(options: ReadOptions, urls: Iterable[str]) -> None:
    """Raise ``SourcePolicyError`` if the source policy of ``options`` refuses any of ``urls``."""
    source_policy(options.allowed_sources, options.local_sources).check_all(urls)


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
