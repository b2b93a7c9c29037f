"""Unit tests: configuration merge and lazy creation of the client wrappers (no broker)."""

from __future__ import annotations

import logging

import pytest
from confluent_kafka import KafkaError
from pydantic import SecretStr

from alchemiser_common.errors import ConfigurationError
from alchemiser_common.kafka import (
    KafkaAdmin,
    KafkaConsumer,
    KafkaProducer,
    admin_config,
    consumer_config,
    producer_config,
)
from alchemiser_common.settings import KafkaSettings

SETTINGS = KafkaSettings(
    bootstrap_servers="b1:9092,b2:9092",
    security_protocol="SASL_SSL",
    sasl_mechanism="PLAIN",
    sasl_username="user",
    sasl_password=SecretStr("pw"),
    session_timeout_ms=7000,
    heartbeat_interval_ms=1500,
    fetch_wait_max_ms=25,
)


def test_consumer_config_when_built_then_manual_commit_read_committed_and_settings_timing() -> None:
    config = consumer_config(SETTINGS, group_id="strategy")

    assert config["bootstrap.servers"] == "b1:9092,b2:9092"
    assert config["sasl.password"] == "pw"
    assert config["group.id"] == "strategy"
    assert config["enable.auto.commit"] is False
    assert config["isolation.level"] == "read_committed"
    assert config["auto.offset.reset"] == "earliest"
    assert config["session.timeout.ms"] == 7000
    assert config["heartbeat.interval.ms"] == 1500
    assert config["fetch.wait.max.ms"] == 25


def test_consumer_config_when_overrides_given_then_they_win() -> None:
    config = consumer_config(
        SETTINGS,
        group_id="g",
        overrides={"auto.offset.reset": "latest", "bootstrap.servers": "other:1"},
    )
    assert config["auto.offset.reset"] == "latest"
    assert config["bootstrap.servers"] == "other:1"
    assert config["enable.auto.commit"] is False


def test_producer_config_when_transactional_id_given_then_idempotent_acks_all_and_id_set() -> None:
    plain = producer_config(SETTINGS)
    transactional = producer_config(SETTINGS, transactional_id="strategy-0")

    assert plain["enable.idempotence"] is True
    assert plain["acks"] == "all"
    assert "transactional.id" not in plain
    assert transactional["transactional.id"] == "strategy-0"
    assert "group.id" not in transactional


def test_admin_config_when_built_then_only_shared_settings_and_overrides() -> None:
    config = admin_config(SETTINGS, overrides={"log_level": 0})
    assert config == {**SETTINGS.client_config(), "log_level": 0}


def test_wrapper_when_constructed_then_logger_and_error_callback_are_wired() -> None:
    logger = logging.getLogger("test.kafka")
    producer = KafkaProducer(SETTINGS, transactional_id="t-1", logger=logger)

    assert producer.config["logger"] is logger
    assert callable(producer.config["error_cb"])
    assert producer.transactional is True
    assert KafkaProducer(SETTINGS).transactional is False


def test_error_callback_when_called_then_logs_with_the_next_step(
    caplog: pytest.LogCaptureFixture,
) -> None:
    logger = logging.getLogger("test.kafka.errors")
    callback = KafkaConsumer(SETTINGS, group_id="g", logger=logger).config["error_cb"]
    with caplog.at_level(logging.WARNING, logger="test.kafka.errors"):
        callback(KafkaError(KafkaError._TRANSPORT, "down"))
        callback(KafkaError(KafkaError._FENCED, "fenced", fatal=True))

    levels = [record.levelno for record in caplog.records]
    assert levels == [logging.WARNING, logging.ERROR]
    assert "librdkafka keeps retrying" in caplog.records[0].getMessage()
    assert "cannot continue" in caplog.records[1].getMessage()


def test_wrapper_when_config_invalid_then_fails_on_first_use_not_construction() -> None:
    consumer = KafkaConsumer(SETTINGS, group_id="g", overrides={"no.such.setting": 1})
    assert consumer.created is False

    with pytest.raises(ConfigurationError, match="invalid Kafka consumer configuration"):
        consumer.assignment()
    assert consumer.created is False


def test_wrapper_when_used_then_client_created_once() -> None:
    admin = KafkaAdmin({"bootstrap.servers": "127.0.0.1:1"})
    assert admin.created is False

    first = admin.client
    assert admin.created is True
    assert admin.client is first
    assert admin.bootstrap_servers == "127.0.0.1:1"
