"""Monitoring: CloudWatch alarms to the ops topic, and one dashboard for the pipeline.

Alarms (thresholds from the stage config):
- per hot-path function: iterator age (records waiting too long; fires before they would expire to
  the on-failure queue), errors, throttles, and on-failure queue depth (a batch was given up on);
- per stream: GetRecords iterator age (the Firehose consumer falling behind);
- Firehose: delivery freshness to S3 and failed deliveries;
- per Glue job: failed runs (EventBridge "Glue Job State Change" FAILED, counted by the rule).
Missing data is "not breaching" everywhere: a quiet fleet is not an incident.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_glue as glue
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kinesisfirehose as firehose
from aws_cdk import aws_sns as sns
from constructs import Construct

from airlake.settings import AlarmConfig
from stacks.hot_path import KinesisConsumer


class PipelineMonitoring(Construct):
    """Attributes: `alarms` (every alarm created), `dashboard`."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        dashboard_name: str,
        ops_topic: sns.ITopic,
        consumers: Mapping[str, KinesisConsumer],
        streams: Mapping[str, kinesis.IStream],
        delivery_stream: firehose.IDeliveryStream,
        glue_jobs: Mapping[str, glue.IJob],
        config: AlarmConfig,
    ) -> None:
        super().__init__(scope, id_)
        self._config = config
        self._action = cw_actions.SnsAction(ops_topic)
        self.alarms: list[cw.Alarm] = []
        period = Duration.seconds(config.period_seconds)

        for name, consumer in consumers.items():
            fn = consumer.function
            iterator_age = fn.metric("IteratorAge", statistic=cw.Stats.MAXIMUM, period=period)
            self._alarm(f"{name}-iterator-age", iterator_age, config.iterator_age_seconds * 1000,
                        f"{name}: records wait longer than {config.iterator_age_seconds} s")  # fmt: skip
            self._alarm(f"{name}-errors", fn.metric_errors(period=period, statistic=cw.Stats.SUM),
                        config.lambda_errors, f"{name}: invocation errors")  # fmt: skip
            self._alarm(f"{name}-throttles", fn.metric_throttles(period=period, statistic=cw.Stats.SUM),
                        config.lambda_throttles, f"{name}: throttled invocations")  # fmt: skip
            depth = consumer.failures.metric_approximate_number_of_messages_visible(
                period=period, statistic=cw.Stats.MAXIMUM
            )
            self._alarm(f"{name}-failed-batches", depth, config.dlq_messages,
                        f"{name}: batches given up on (on-failure queue); re-read them from the stream or raw/")  # fmt: skip

        for name, stream in streams.items():
            age = stream.metric_get_records_iterator_age_milliseconds(
                period=period, statistic=cw.Stats.MAXIMUM
            )
            self._alarm(f"{name}-stream-iterator-age", age, config.iterator_age_seconds * 1000,
                        f"stream {name}: the oldest unread record is older than {config.iterator_age_seconds} s")  # fmt: skip

        freshness = delivery_stream.metric(
            "DeliveryToS3.DataFreshness", statistic=cw.Stats.MAXIMUM, period=period
        )
        self._alarm("firehose-freshness", freshness, config.firehose_freshness_seconds,
                    "raw landing: the oldest record in Firehose is not yet in S3")  # fmt: skip
        success = delivery_stream.metric("DeliveryToS3.Success", statistic=cw.Stats.MINIMUM, period=period)
        self._alarm("firehose-delivery-failures", success, 1, "raw landing: S3 deliveries failed",
                    comparison=cw.ComparisonOperator.LESS_THAN_THRESHOLD)  # fmt: skip

        for name, job in glue_jobs.items():
            failed = job.metric_failure(period=period)
            self._alarm(f"glue-{name}-failed", failed, 1, f"Glue job {name} failed")

        self.dashboard = cw.Dashboard(
            self,
            "Dashboard",
            dashboard_name=dashboard_name,
            default_interval=Duration.hours(6),
        )
        self.dashboard.add_widgets(
            cw.TextWidget(
                markdown=f"# {dashboard_name}\nDevices -> Kinesis -> Lambda / Firehose -> S3 -> Glue -> Athena",
                width=24,
                height=2,
            )
        )
        self.dashboard.add_widgets(
            cw.GraphWidget(
                title="Records in (readings, calibrated)",
                left=[s.metric_incoming_records(period=period) for s in streams.values()],
                width=8,
            ),
            cw.GraphWidget(
                title="Iterator age (ms)",
                left=[
                    c.function.metric("IteratorAge", statistic=cw.Stats.MAXIMUM, period=period)
                    for c in consumers.values()
                ],
                width=8,
            ),
            cw.GraphWidget(
                title="Firehose freshness (s)",
                left=[freshness],
                right=[delivery_stream.metric_incoming_records(period=period)],
                width=8,
            ),
        )
        self.dashboard.add_widgets(
            cw.GraphWidget(
                title="Lambda errors / throttles",
                left=[c.function.metric_errors(period=period) for c in consumers.values()],
                right=[c.function.metric_throttles(period=period) for c in consumers.values()],
                width=8,
            ),
            cw.GraphWidget(
                title="Lambda duration p95 (ms)",
                left=[c.function.metric_duration(period=period, statistic="p95") for c in consumers.values()],
                width=8,
            ),
            cw.GraphWidget(
                title="On-failure queue depth",
                left=[
                    c.failures.metric_approximate_number_of_messages_visible(period=period)
                    for c in consumers.values()
                ],
                width=8,
            ),
        )
        self.dashboard.add_widgets(
            cw.AlarmStatusWidget(title="Alarms", alarms=self.alarms, width=24, height=4)
        )

    def _alarm(
        self,
        name: str,
        metric: cw.IMetric,
        threshold: float,
        description: str,
        *,
        comparison: cw.ComparisonOperator = cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    ) -> cw.Alarm:
        alarm = cw.Alarm(
            self,
            f"Alarm-{name}",
            metric=metric,
            threshold=threshold,
            evaluation_periods=self._config.evaluation_periods,
            comparison_operator=comparison,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            alarm_description=description,
        )
        alarm.add_alarm_action(self._action)
        alarm.add_ok_action(self._action)
        self.alarms.append(alarm)
        return alarm
