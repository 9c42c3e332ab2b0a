"""datetime → ``google.protobuf.Timestamp`` without protobuf's pure-Python ``FromDatetime`` (which goes through
``utctimetuple`` and ``calendar.timegm``): a response or event with several timestamps per item paid for that on
every item of a batch."""

from __future__ import annotations

import datetime as dt

from google.protobuf import timestamp_pb2

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_SECONDS_PER_DAY = 86_400


def timestamp_from_datetime(moment: dt.datetime) -> timestamp_pb2.Timestamp:
    """The same Timestamp as ``Timestamp().FromDatetime(moment)`` (a naive datetime counts as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    delta = moment - _EPOCH
    return timestamp_pb2.Timestamp(
        seconds=delta.days * _SECONDS_PER_DAY + delta.seconds, nanos=delta.microseconds * 1000
    )
