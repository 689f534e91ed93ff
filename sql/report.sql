-- ml.report: one self-contained HTML page per project, its plots inline
-- SVG drawn from the catalog; the curves kept with each model.
SELECT setval('ml.models_id_seq', 170000, false);
SELECT model_id FROM ml.train('rep_cls', 'breast_cancer', 'diagnosis', 'xgboost',
    hyperparams => '{"n_estimators": 40, "max_depth": 3, "early_stopping_rounds": 10}');
SELECT model_id FROM ml.train('rep_reg', 'diabetes', 'progression', 'linear');
SELECT count(*) > 0 AS monitored FROM ml.monitor('rep_reg', 'SELECT age + 10 AS age, sex, bmi, bp, s1, s2, s3, s4, s5, s6 FROM diabetes');

-- the curves: ROC from (0,0) to (1,1), its area as the stored AUC, at most 101 points
SELECT jsonb_array_length(curves->'roc') <= 102 AS few_points,
       curves->'roc'->0 AS roc_start, curves->'roc'->-1 AS roc_end,
       abs((SELECT sum(((a->>0)::float8 - (b->>0)::float8) * ((a->>1)::float8 + (b->>1)::float8) / 2)
              FROM jsonb_array_elements(curves->'roc') WITH ORDINALITY x(a, i)
              JOIN jsonb_array_elements(curves->'roc') WITH ORDINALITY z(b, j) ON j = i - 1)
           - (metrics->>'roc_auc')::float8) < 0.02 AS area_is_auc,
       (SELECT bool_and((p->>0)::float8 BETWEEN 0 AND 1 AND (p->>1)::float8 BETWEEN 0 AND 1)
          FROM jsonb_array_elements(curves->'pr') p) AS pr_in_unit_square
  FROM ml.models WHERE id = 170000;
-- regression: (actual, predicted) pairs of hold-out rows, whose RMSE is the stored one
SELECT jsonb_array_length(curves->'actual_vs_predicted') = n_test AS every_test_row,
       abs(sqrt((SELECT avg(((p->>0)::float8 - (p->>1)::float8) ^ 2)
                   FROM jsonb_array_elements(curves->'actual_vs_predicted') p))
           - (metrics->>'rmse')::float8) < 1e-9 AS rmse_matches
  FROM ml.models WHERE id = 170001;

-- the pages: every section, plots with their marks, nothing fetched
CREATE TEMP TABLE pages AS
SELECT 'rep_cls' AS project, ml.report('rep_cls') AS html
UNION ALL SELECT 'rep_reg', ml.report('rep_reg');
SELECT project,
       (SELECT string_agg(m[1], ',') FROM regexp_matches(html, '<section id="([a-z]+)"', 'g') m) AS sections,
       regexp_count(html, '<svg ') AS svgs,
       regexp_count(html, '<figure id=') AS figures
  FROM pages ORDER BY project;
SELECT project,
       regexp_count(html, '<polyline class="series"') AS lines,
       regexp_count(html, '<circle class="point"') AS points,
       regexp_count(html, '<rect class="bar"') AS bars,
       regexp_count(html, '<rect class="cell"') AS cells,
       regexp_count(html, '<circle class="deployment"') AS deployments
  FROM pages ORDER BY project;
SELECT project,
       html LIKE '<!DOCTYPE html>%</html>' AS whole_page,
       html !~* '<script|<link|<img|<iframe|\ssrc=|\shref=|url\(' AS nothing_fetched,
       regexp_count(html, 'http') = regexp_count(html, 'xmlns="http://www.w3.org/2000/svg"') AS only_svg_namespaces,
       html !~ 'points=""' AS no_empty_line
  FROM pages ORDER BY project;
-- text from the catalog is escaped
SELECT ml._html('<b>"a" & b</b>');
SELECT ml.report('nope');
