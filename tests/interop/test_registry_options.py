"""What refindex takes from a VirtualiZarr registry to scan a URL: the S3 store's endpoint,
region and unsigned requests; nothing for other URLs or stores it cannot read."""

from __future__ import annotations

from obspec_utils.registry import ObjectStoreRegistry
from obstore.store import LocalStore, S3Store

from refindex.io import ReadOptions
from refindex.virtualizarr.registry_options import read_options_for

BASE = ReadOptions()


def test_the_s3_store_for_the_url_gives_endpoint_and_region():
    store = S3Store("bkt", endpoint="http://127.0.0.1:9", region="eu-west-3",
                    client_options={"allow_http": True})
    options = read_options_for("s3://bkt/a.nc", ObjectStoreRegistry({"s3://bkt": store}), BASE)
    assert (options.endpoint_url, options.region, options.anon) == (
        "http://127.0.0.1:9", "eu-west-3", False)


def test_skip_signature_reads_anonymously():
    store = S3Store("open", skip_signature=True, region="us-west-2")
    options = read_options_for("s3://open/a.nc", ObjectStoreRegistry({"s3://open": store}), BASE)
    assert options.anon and options.endpoint_url is None


def test_other_urls_and_unknown_buckets_keep_the_options():
    registry = ObjectStoreRegistry({"file://": LocalStore(), "s3://bkt": S3Store("bkt")})
    assert read_options_for("/data/a.nc", registry, BASE) is BASE
    assert read_options_for("s3://elsewhere/a.nc", registry, BASE) is BASE


def test_a_store_whose_config_cannot_be_read_keeps_the_options():
    # obstore 0.12 panics reading the config of a store made with allow_http as a keyword.
    store = S3Store("bkt", allow_http=True)
    assert read_options_for("s3://bkt/a.nc", ObjectStoreRegistry({"s3://bkt": store}),
                            BASE) is BASE
