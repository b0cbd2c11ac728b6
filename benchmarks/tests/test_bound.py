"""benchmarks/bound.py: the round-trip bound is the largest of its limits."""

from __future__ import annotations

import pytest

from benchmarks.bound import (
    Budget,
    Latency,
    Limits,
    Tally,
    round_trip_bound,
    simulator_budget,
    sync_chain_s,
    tallies_between,
)

FAR = Latency.parse("150,2")


def test_latency_parses_milliseconds_and_sums_requests_and_items() -> None:
    assert Latency.parse("150,2") == Latency(0.150, 0.002)
    assert Latency.parse("20") == Latency(0.020, 0.0)
    assert FAR.total_s(requests=10, items=500) == pytest.approx(10 * 0.150 + 500 * 0.002)


def test_latency_refuses_text_naming_the_argument() -> None:
    with pytest.raises(ValueError, match=r"latency 'fast'.*BASE_MS\[,PER_ITEM_MS\]"):
        Latency.parse("fast")


def test_limits_must_allow_a_request() -> None:
    with pytest.raises(ValueError, match="per_mailbox=0"):
        Limits(per_mailbox=0, server=10)


def test_per_mailbox_concurrency_binds_for_few_big_mailboxes() -> None:
    # Mailbox x: 100 requests carrying 7,000 items = 15 s + 14 s of latency; 10 in flight.
    tallies = {"x": Tally(100, 7000), "y": Tally(50, 1000)}
    out = round_trip_bound(tallies, FAR, Limits(per_mailbox=10, server=200, rate_per_s=2000))
    assert out["bounds_s"]["per-mailbox concurrency"] == pytest.approx(2.9)
    assert out["binding"] == "per-mailbox concurrency"
    assert out["bound_s"] == pytest.approx(2.9)
    assert out["slowest_mailbox"]["round_trips_one_at_a_time_s"] == pytest.approx(29.0)
    assert out["requests"] == 150 and out["items_in_requests"] == 8000
    assert out["mean_items_per_request"] == pytest.approx(53.3)


def test_server_concurrency_binds_for_many_mailboxes() -> None:
    tallies = {f"m{i}": Tally(20, 0) for i in range(100)}  # 3 s each, 300 s in all
    out = round_trip_bound(tallies, FAR, Limits(per_mailbox=10, server=50), wall_s=12.0)
    assert out["bounds_s"] == {
        "per-mailbox concurrency": pytest.approx(0.3),
        "server concurrency": pytest.approx(6.0),
        "server rate": 0.0,
    }
    assert out["binding"] == "server concurrency"
    assert out["measured_over_bound"] == pytest.approx(2.0)


def test_server_rate_binds_when_it_is_the_tightest() -> None:
    tallies = {"x": Tally(1000, 0)}
    out = round_trip_bound(tallies, Latency(0.0, 0.0), Limits(10, 10, rate_per_s=100.0))
    assert out["binding"] == "server rate" and out["bound_s"] == pytest.approx(10.0)


def test_in_flight_is_the_time_weighted_mean_and_the_peak() -> None:
    tallies = {"x": Tally(4, 0, peak_in_flight=3, busy_s=6.0, span_s=3.0),
               "y": Tally(1, 0, peak_in_flight=1, busy_s=1.0, span_s=1.0)}  # fmt: skip
    out = round_trip_bound(tallies, FAR, Limits(10, 200))
    assert out["peak_in_flight_per_mailbox"] == 3
    assert out["mean_in_flight_per_mailbox"] == pytest.approx(7.0 / 4.0, abs=0.01)


def test_a_run_without_requests_says_so() -> None:
    assert "error" in round_trip_bound({}, FAR, Limits(10, 200))


def test_tallies_between_subtracts_the_earlier_answer_and_drops_idle_mailboxes() -> None:
    before = {"x": {"requests": 2, "items": 10, "busy_s": 0.5}}
    after = {
        "x": {"requests": 5, "items": 40, "peak_in_flight": 2, "busy_s": 1.5,
              "first_s": 100.0, "last_s": 104.0},
        "y": {"requests": 0, "items": 0, "peak_in_flight": 0, "busy_s": 0.0,
              "first_s": None, "last_s": 0.0},
    }  # fmt: skip
    assert tallies_between(after, before) == {
        "x": Tally(requests=3, items=30, peak_in_flight=2, busy_s=1.0, span_s=4.0)
    }


def test_the_sync_chain_is_the_largest_folders_full_pages_one_after_another() -> None:
    # 5,000 contacts: 10 pages of <= 512 = 1.5 s of requests + 10 s of items.
    assert sync_chain_s((5000, 1500, 500), FAR) == pytest.approx(11.5)
    assert sync_chain_s((512, 0), FAR) == pytest.approx(0.15 + 1.024)
    assert sync_chain_s((0,), FAR) == pytest.approx(0.15)  # an empty folder still answers once
    assert sync_chain_s((), FAR) == 0.0


def test_the_floor_is_the_chain_when_it_is_longer_than_the_bound() -> None:
    tallies = {"x": Tally(100, 7000)}  # bound 2.9 s at 10 in flight
    out = round_trip_bound(tallies, FAR, Limits(10, 200), wall_s=23.0, folder_items=(5000, 0))
    assert (out["bound_s"], out["largest_folder_sync_chain_s"]) == (2.9, 11.5)
    assert out["floor_s"] == 11.5 and out["measured_over_floor"] == 2.0
    assert out["measured_over_bound"] == pytest.approx(7.93)
    without = round_trip_bound(tallies, FAR, Limits(10, 200), wall_s=23.0)
    assert without["floor_s"] == 2.9 and without["largest_folder_sync_chain_s"] == 0.0


def test_the_budget_binds_when_a_mailbox_costs_more_units_than_burst_and_recharge_allow() -> None:
    # 300 requests + 0.05 x 14,000 items = 1,000 units; 200 of burst, 40 back a second: 20 s.
    budget = Budget(burst=200, recharge_per_s=40, item_cost=0.05)
    tallies = {"x": Tally(300, 14_000), "y": Tally(10, 100)}
    out = round_trip_bound(tallies, FAR, Limits(per_mailbox=10, server=200), budget=budget)
    assert out["bounds_s"]["per-mailbox budget"] == pytest.approx(20.0)
    assert out["binding"] == "per-mailbox budget"
    assert out["budget_units_per_mailbox"] == pytest.approx(1000.0)


def test_a_mailbox_within_its_burst_costs_no_budget_time() -> None:
    assert Budget(200, 40, 0.05).floor_s(requests=100, items=1000) == 0.0


def test_the_simulator_budget_is_its_default_throttling() -> None:
    assert simulator_budget() == Budget(burst=200.0, recharge_per_s=40.0, item_cost=0.05)
