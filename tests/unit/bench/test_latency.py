import pytest

from bench.latency import p50_p99_ms, percentile

HUNDRED = [float(value) for value in range(1, 101)]


@pytest.mark.parametrize(
    ("fraction", "expected"), [(0.01, 1.0), (0.07, 7.0), (0.5, 50.0), (0.505, 51.0), (0.99, 99.0), (1.0, 100.0)]
)
def test_nearest_rank_of_one_to_a_hundred(fraction: float, expected: float) -> None:
    assert percentile(HUNDRED, fraction) == expected


def test_nearest_rank_rounds_up_between_samples() -> None:
    samples = [10.0, 20.0, 30.0, 40.0]
    assert percentile(samples, 0.5) == 20.0  # rank ceil(2.0) = 2
    assert percentile(samples, 0.51) == 30.0  # rank ceil(2.04) = 3
    assert percentile(samples, 0.99) == 40.0
    assert percentile(samples, 0.1) == 10.0


def test_a_single_sample_is_every_percentile() -> None:
    assert percentile([7.5], 0.01) == percentile([7.5], 0.5) == percentile([7.5], 1.0) == 7.5


@pytest.mark.parametrize("size", [1, 2, 3, 99, 100, 101, 199, 1000, 12345])
def test_p50_and_p99_ranks_for_many_sizes(size: int) -> None:
    samples = [float(value) for value in range(1, size + 1)]
    # Nearest rank: the smallest value with at least that fraction of samples at or below it.
    assert percentile(samples, 0.5) == -(-size // 2)
    assert percentile(samples, 0.99) == -(-99 * size // 100)


def test_no_samples_is_an_error() -> None:
    with pytest.raises(ValueError, match="no samples"):
        percentile([], 0.5)


@pytest.mark.parametrize("fraction", [0.0, -0.5, 1.01, 50])
def test_a_fraction_outside_zero_to_one_is_an_error(fraction: float) -> None:
    with pytest.raises(ValueError, match="fraction must be in"):
        percentile(HUNDRED, fraction)


def test_p50_p99_in_milliseconds_from_unsorted_microseconds() -> None:
    samples_us = [float(value * 1000) for value in reversed(range(1, 101))]
    original = list(samples_us)
    assert p50_p99_ms(samples_us) == (50.0, 99.0)
    assert samples_us == original  # the caller's list is not sorted in place


def test_p50_p99_of_a_few_samples() -> None:
    assert p50_p99_ms([1500.0]) == (1.5, 1.5)
    assert p50_p99_ms([250.0, 2000.0, 750.0]) == (0.75, 2.0)


def test_p50_p99_without_samples_is_none() -> None:
    assert p50_p99_ms([]) == (None, None)
