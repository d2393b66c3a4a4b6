// vitals: 5-minute means of readings and trends, and the alerts as they are, copied from the
// raw bucket (kept 90 days) into the long-retention bucket, once data is two weeks old.
//
// Why two weeks: devices upload hours-old buffers after being offline, so recent days may
// still change; after 14 days nothing more arrives. Each run covers the two days that turned
// 14-16 days old, so one missed run is caught up by the next; a window written again
// overwrites the same point. To backfill further, run the same query by hand with a wider range.
// init.sh creates this task; the bucket names below are the defaults it uses.
import "date"

option task = {name: "vitals-downsample-5m", every: 1d, offset: 30m}

raw = "vitals"
long = "vitals_5m"
stop = date.truncate(t: date.sub(d: 14d, from: now()), unit: 1d)
start = date.sub(d: 2d, from: stop)

from(bucket: raw)
    |> range(start: start, stop: stop)
    |> filter(
        fn: (r) =>
            (r._measurement == "readings"
                and contains(value: r._field, set: ["temp", "spo2", "hr", "rr", "pi", "battery"]))
                or (r._measurement == "trends"
                    and contains(
                        value: r._field,
                        set: ["temp", "hr", "spo2", "rr", "temp_slope", "hr_slope", "hr_baseline", "news2"],
                    )),
    )
    |> toFloat()
    |> aggregateWindow(every: 5m, fn: mean, createEmpty: false, timeSrc: "_start")
    |> to(bucket: long)

from(bucket: raw)
    |> range(start: start, stop: stop)
    |> filter(fn: (r) => r._measurement == "alerts")
    |> to(bucket: long)
