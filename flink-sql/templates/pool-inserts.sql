-- ONE INSERT per sink table, a UNION ALL over the members (in the pool's order): the job
-- has one sink per table however many members it has.
INSERT INTO result_rows
{{rows}};

INSERT INTO result_late
{{late}};
