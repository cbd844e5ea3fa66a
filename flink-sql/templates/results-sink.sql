-- Result rows travel to the results stream as JSON; the control plane stores them.
CREATE TEMPORARY TABLE results (
  analysisId STRING,
  windowStart TIMESTAMP_LTZ(3),
  windowEnd TIMESTAMP_LTZ(3),
{{columns}}
) WITH (
{{sinkOptions}}
);
