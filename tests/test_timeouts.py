"""The timeout chain (core/timeouts.py): the Lambda consumer's queue follows from its function timeout."""

from core import timeouts
from core.timeouts import SQS_MAX_VISIBILITY_TIMEOUT, Timeouts


def test_a_queue_feeding_a_lambda_hides_a_message_six_times_the_functions_timeout():
    assert timeouts.lambda_visibility(150) == 900
    assert timeouts.lambda_visibility(0.5) == 6  # SQS counts whole seconds: rounded up, never below 6x


def test_the_lambda_consumers_queue_is_derived_from_the_lease_that_bounds_its_function():
    chain = Timeouts.derive(payment=200)

    assert chain.lambda_function == chain.lease == 230
    assert chain.lambda_visibility == 6 * 230
    assert chain.lambda_visibility > chain.visibility  # the ECS workers' visibility is not enough
    assert chain.problems() == []


def test_a_lease_whose_lambda_queue_would_exceed_sqs_maximum_is_a_problem_naming_the_lease():
    longest = SQS_MAX_VISIBILITY_TIMEOUT // 6  # 7200 s: a lease of it still fits

    assert Timeouts.derive(lease=longest, visibility=longest + 60).problems() == []
    problems = Timeouts.derive(lease=longest + 1, visibility=longest + 61).problems()
    assert [setting for setting, _ in problems] == ["ORDER_LEASE_SECONDS"]
    assert "43206s" in problems[0][1] and f"{SQS_MAX_VISIBILITY_TIMEOUT}s" in problems[0][1]
