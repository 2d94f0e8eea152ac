"""Fixtures: test bundles from the environment (bindings/python/test.sh sets them).

RK_TEST_BUNDLE   a one-output bundle
RK_TEST_BUNDLE5  a five-output (HelpSteer2) bundle
RK_TEST_BROKEN   a bundle without model.onnx
REWARDKIT_LIB    librewardkit.so (else the usual search)
"""

import os

import pytest

import rewardkit


def _env_dir(name):
    path = os.environ.get(name)
    if not path:
        pytest.skip(f"{name} is not set (bindings/python/test.sh sets it)")
    return path


@pytest.fixture(scope="session")
def bundle():
    return _env_dir("RK_TEST_BUNDLE")


@pytest.fixture(scope="session")
def bundle5():
    return _env_dir("RK_TEST_BUNDLE5")


@pytest.fixture(scope="session")
def broken_bundle():
    return _env_dir("RK_TEST_BROKEN")


@pytest.fixture(scope="session")
def scorer(bundle):
    with rewardkit.Scorer(bundle, threads=1) as s:
        yield s


@pytest.fixture(scope="session")
def scorer5(bundle5):
    with rewardkit.Scorer(bundle5, threads=1) as s:
        yield s
