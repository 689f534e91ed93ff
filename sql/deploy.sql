-- sql/deploy.sql: the deployment gate, automatic promotion, ml.deploy
-- strategies, the append-only history and ml.drop_project.

-- model ids in this suite start at a fixed value, whatever ran before
SELECT setval('ml.models_id_seq', 6000, false);

-- the first model of a project deploys when it passes the gate
SELECT project, model_id AS first_model, deployed
  FROM ml.train('dia', 'diabetes', 'progression') \gset
SELECT :'first_model'::bigint > 0 AS has_id, :'deployed' AS deployed;

-- a second, worse model (heavily regularised) is stored but not
-- deployed: it is compared with the live model on the same hold-out rows
SELECT model_id AS worse, deployed
  FROM ml.train('dia', 'diabetes', 'progression', 'ridge', hyperparams => '{"alpha": 1000}') \gset
SELECT :'deployed' AS worse_deployed;
-- a source the live model cannot be scored on (it lacks the live
-- model's columns): no automatic deployment
SELECT deployed FROM ml.train('dia', 'SELECT bmi, progression FROM diabetes', 'progression');
SELECT strategy, reason FROM ml.deployments d JOIN ml.projects p ON p.id = d.project_id
 WHERE p.name = 'dia' ORDER BY d.id;

-- a better model than the live one deploys automatically: ridge with a
-- tiny alpha on all features versus a live model on bmi alone
SELECT model_id AS bmi_only FROM ml.train('dia2', 'SELECT bmi, progression FROM diabetes', 'progression') \gset
SELECT model_id AS better, deployed FROM ml.train('dia2', 'diabetes', 'progression', 'ridge',
       hyperparams => '{"alpha": 0.01}') \gset
SELECT :'deployed' AS better_deployed;
SELECT model_id = :better AS live_is_better, strategy,
       reason ~ '^r2 [0-9.]+ beats live model [0-9]+''s [0-9.]+ on the same 111 hold-out rows$' AS reason_ok
  FROM ml.deployments d JOIN ml.projects p ON p.id = d.project_id
 WHERE p.name = 'dia2' ORDER BY d.id DESC LIMIT 1;

-- the gate: a failed bound keeps the model out and says why
SELECT model_id AS gated, deployed FROM ml.train('gated', 'diabetes', 'progression',
       gate => '{"min": {"r2": 0.9}, "max": {"rmse": 10}}') \gset
SELECT :'deployed' AS gated_deployed,
       (SELECT count(*) FROM ml.deployments d JOIN ml.projects p ON p.id = d.project_id WHERE p.name = 'gated') AS deployments;
-- a gate it passes
SELECT deployed FROM ml.train('gated', 'diabetes', 'progression', gate => '{"min": {"r2": 0.5}, "max": {"rmse": 60, "mae": 50}}');
SELECT expect_error($$SELECT * FROM ml.train('gated', 'diabetes', 'progression', gate => '{"min": {"f1": 0.5}}')$$);
SELECT expect_error($$SELECT * FROM ml.train('gated', 'diabetes', 'progression', gate => '{"above": {"r2": 0.5}}')$$);
SELECT expect_error($$SELECT * FROM ml.train('gated', 'diabetes', 'progression', gate => '{"min": {"r2": "high"}}')$$);
SELECT expect_error($$SELECT * FROM ml.train('gated', 'diabetes', 'progression', gate => '{"min": [1]}')$$);
SELECT expect_error($$SELECT * FROM ml.train('gated3', 'iris', 'species', gate => '{"min": {"roc_auc": 0.9}}')$$);
SELECT deployed FROM ml.train('gated2', 'breast_cancer', 'diagnosis', gate => '{"min": {"roc_auc": 0.9, "f1": 0.9}, "max": {"log_loss": 0.5}}');

-- deploy never and always
SELECT deployed FROM ml.train('dia', 'diabetes', 'progression', 'ridge', deploy => 'never');
SELECT model_id AS always_model, deployed FROM ml.train('dia', 'SELECT age, progression FROM diabetes', 'progression', deploy => 'always') \gset
SELECT :'deployed' AS always_deployed;
SELECT expect_error($$SELECT * FROM ml.train('dia', 'diabetes', 'progression', deploy => 'sometimes')$$);

-- ml.deploy: best_score picks the best r2 on hold-out rows
SELECT project, model_id = :first_model AS is_first, algorithm, strategy, deployed
  FROM ml.deploy('dia', 'best_score');
-- deploying the live model again changes nothing
SELECT deployed FROM ml.deploy('dia', 'best_score');
-- most_recent, a model by id, and rollback
SELECT model_id = (SELECT max(m.id) FROM ml.models m JOIN ml.projects p ON p.id = m.project_id WHERE p.name = 'dia') AS newest,
       strategy FROM ml.deploy('dia', 'most_recent');
SELECT model_id = :worse AS by_id, strategy, deployed FROM ml.deploy('dia', :worse);
SELECT model_id = (SELECT max(m.id) FROM ml.models m JOIN ml.projects p ON p.id = m.project_id WHERE p.name = 'dia') AS back_to_newest,
       strategy FROM ml.deploy('dia', 'rollback');
-- the live model follows the newest deployment
SELECT live_model = (SELECT max(m.id) FROM ml.models m JOIN ml.projects p ON p.id = m.project_id WHERE p.name = 'dia') AS overview_live
  FROM ml.overview WHERE project = 'dia';
-- the whole history, append-only, with strategies and reasons
SELECT d.strategy, d.reason IS NOT NULL AS has_reason, d.deployed_by::text = current_user AS by_me
  FROM ml.deployments d JOIN ml.projects p ON p.id = d.project_id
 WHERE p.name = 'dia' ORDER BY d.id;

-- errors
SELECT expect_error($$SELECT * FROM ml.deploy('dia', 'newest')$$);
SELECT expect_error($$SELECT * FROM ml.deploy('nope', 'best_score')$$);
SELECT expect_error(format('SELECT * FROM ml.deploy(%L, %s)', 'dia2', :worse));
SELECT expect_error($$SELECT * FROM ml.deploy('dia', 999999::bigint)$$);
SELECT model_id AS lonely FROM ml.train('lonely', 'diabetes', 'progression') \gset
SELECT expect_error($$SELECT * FROM ml.deploy('lonely', 'rollback')$$);
SELECT model_id AS undeployed FROM ml.train('undeployed', 'diabetes', 'progression', deploy => 'never') \gset
SELECT expect_error($$SELECT * FROM ml.deploy('undeployed', 'rollback')$$);
SELECT expect_error($$SELECT ml.predict('undeployed', ARRAY[1,2,3,4,5,6,7,8,9,10]::float8[])$$);
SELECT strategy FROM ml.deploy('undeployed', 'most_recent');

-- views
SELECT project, task, target, algorithm, key_metric, score > 0.4 AS score_ok, models
  FROM ml.overview WHERE project IN ('dia', 'dia2', 'gated') ORDER BY project;
SELECT project, rank, live, algorithm FROM ml.leaderboard WHERE project = 'dia2' ORDER BY rank;

-- drop_project removes the project, its models and its deployments
SELECT * FROM catalog_counts() \gset before_
SELECT (SELECT count(*) FROM ml.models m JOIN ml.projects p ON p.id = m.project_id WHERE p.name = 'dia') AS dia_models,
       (SELECT count(*) FROM ml.deployments d JOIN ml.projects p ON p.id = d.project_id WHERE p.name = 'dia') AS dia_deployments \gset
SELECT ml.drop_project('dia');
SELECT :before_projects - projects AS projects_removed, :before_models - models = :dia_models AS models_removed,
       :before_deployments - deployments = :dia_deployments AS deployments_removed
  FROM catalog_counts();
SELECT expect_error($$SELECT ml.predict('dia', ARRAY[1,2,3,4,5,6,7,8,9,10]::float8[])$$);
SELECT expect_error($$SELECT ml.drop_project('dia')$$);

-- two ml.train calls of one statement create a new project once
SELECT t.algorithm, t.project
  FROM (VALUES ('linear'), ('ridge')) v(a),
       LATERAL ml.train('twice', 'SELECT bmi, progression FROM diabetes', 'progression', v.a) t
 ORDER BY t.model_id;
SELECT count(DISTINCT p.id) AS projects, count(*) AS models
  FROM ml.models m JOIN ml.projects p ON p.id = m.project_id WHERE p.name = 'twice';
-- ... and the second must agree with the first on the target and the task
SELECT expect_error($$SELECT t.model_id FROM (VALUES ('progression'), ('bmi')) v(y),
       LATERAL ml.train('twice2', 'SELECT bmi, age, progression FROM diabetes', v.y) t$$);
SELECT expect_error($$SELECT t.model_id FROM (VALUES ('regression'), ('classification')) v(task),
       LATERAL ml.train('twice3', 'SELECT bmi, sex FROM diabetes', 'sex', task => v.task) t$$);
SELECT count(*) AS leftover FROM ml.projects WHERE name IN ('twice2', 'twice3');

-- beat_by: the new model must beat the live one by at least a margin
SELECT deployed FROM ml.train('bb', 'SELECT bmi, progression FROM diabetes', 'progression');
SELECT deployed FROM ml.train('bb', 'diabetes', 'progression', gate => '{"beat_by": {"r2": 0.5}}');
SELECT deployed FROM ml.train('bb', 'diabetes', 'progression', gate => '{"beat_by": {"rmse": 100}}');
SELECT deployed FROM ml.train('bb', 'diabetes', 'progression', gate => '{"beat_by": {"r2": 0.01, "rmse": 1, "mae": 0}}');
SELECT d.strategy, d.reason FROM ml.deployments d JOIN ml.projects p ON p.id = d.project_id
 WHERE p.name = 'bb' ORDER BY d.id;
SELECT expect_error($$SELECT * FROM ml.train('bb', 'diabetes', 'progression', gate => '{"beat_by": {"r2": -0.1}}')$$);
SELECT expect_error($$SELECT * FROM ml.train('bb', 'diabetes', 'progression', gate => '{"beat_by": {"f1": 0.1}}')$$);
SELECT expect_error($$SELECT * FROM ml.train('bb', 'diabetes', 'progression', gate => '{"beat_by": {"r2": "a lot"}}')$$);
SELECT expect_error($$SELECT * FROM ml.train('bb', 'diabetes', 'progression', gate => '{"beat_by": [0.1]}')$$);
SELECT count(*) AS bb_models FROM ml.models m JOIN ml.projects p ON p.id = m.project_id WHERE p.name = 'bb';

-- significance: a one-sided paired test on the same hold-out rows
SELECT deployed FROM ml.train('sg', 'SELECT bmi, progression FROM diabetes', 'progression');
SELECT deployed FROM ml.train('sg', 'diabetes', 'progression', gate => '{"significance": 0.05}');
SELECT deployed FROM ml.train('sgc', 'SELECT mean_radius, diagnosis FROM breast_cancer', 'diagnosis', 'logistic');
SELECT deployed FROM ml.train('sgc', 'breast_cancer', 'diagnosis', 'logistic', gate => '{"significance": 0.05}');
SELECT deployed FROM ml.train('sgc', 'breast_cancer', 'diagnosis', 'xgboost', gate => '{"significance": 0.05}');
SELECT deployed FROM ml.train('sgc', 'breast_cancer', 'diagnosis', 'xgboost', gate => '{"significance": 0.9}');
SELECT p.name, d.reason FROM ml.deployments d JOIN ml.projects p ON p.id = d.project_id
 WHERE p.name IN ('sg', 'sgc') ORDER BY d.id;
-- McNemar's exact p-value recomputed from the counts in the reason (which
-- shows 4 significant digits)
SELECT only_new, only_live, round(p_exact, 6) AS p_exact,
       abs(p_shown - p_exact::float8) <= 5e-4 * p_exact::float8 AS p_matches
  FROM (SELECT m[1]::int AS only_new, m[2]::int AS only_live, p_shown,
               sum(factorial(m[1]::int + m[2]::int) / (factorial(k) * factorial(m[1]::int + m[2]::int - k)))
               / (2::numeric ^ (m[1]::int + m[2]::int)) AS p_exact
          FROM (SELECT regexp_match(d.reason, '(\d+) rows right only with the new model, (\d+) only') AS m,
                       (regexp_match(d.reason, 'p = ([0-9.e-]+)'))[1]::float8 AS p_shown
                  FROM ml.deployments d JOIN ml.projects p ON p.id = d.project_id
                 WHERE p.name = 'sgc' AND d.reason LIKE '%McNemar%') r,
               LATERAL generate_series(m[1]::int, m[1]::int + m[2]::int) k
         GROUP BY m, p_shown) x
 ORDER BY only_new;
SELECT expect_error($$SELECT * FROM ml.train('sg', 'diabetes', 'progression', gate => '{"significance": 0}')$$);
SELECT expect_error($$SELECT * FROM ml.train('sg', 'diabetes', 'progression', gate => '{"significance": 1}')$$);
SELECT expect_error($$SELECT * FROM ml.train('sg', 'diabetes', 'progression', gate => '{"significance": "0.05"}')$$);
SELECT expect_error($$SELECT * FROM ml.train('sgk', 'SELECT bmi, age FROM diabetes', NULL, 'kmeans', gate => '{"significance": 0.05}')$$);
-- the paired t statistic recomputed on the same hold-out rows (ml.split
-- makes the split ml.train makes): its mean reduction is the reason's
SELECT ml.split('diabetes', 'sg_train', 'sg_test', 0.25) IS NOT NULL AS split;
SELECT count(*) AS n, round(avg(d)::numeric, 2) AS mean_reduction,
       round((avg(d) / (stddev_samp(d) / sqrt(count(*))))::numeric, 3) AS t_statistic,
       (SELECT reason LIKE '%mean reduction ' || round(avg(d)::numeric, 2) || ' over 111 rows%'
          FROM ml.deployments WHERE model_id = 6021) AS reason_agrees
  FROM (SELECT (progression - ml.predict(6020, s)) ^ 2 - (progression - ml.predict(6021, s)) ^ 2 AS d
          FROM sg_test s) x;

-- ml.promotions records every decision of ml.train, deployed or not
SELECT pr.model_id, pr.live_model_id, pr.mode, pr.promoted, pr.metric,
       round(pr.score::numeric, 6) AS score, round(pr.live_score::numeric, 6) AS live_score,
       round(pr.p_value::numeric, 6) AS p_value, pr.reason = d.reason AS same_reason_as_deployment
  FROM ml.promotions pr JOIN ml.projects p ON p.id = pr.project_id
  LEFT JOIN ml.deployments d ON d.model_id = pr.model_id
 WHERE p.name IN ('bb', 'sgc') ORDER BY pr.id;
SELECT reason FROM ml.promotions WHERE model_id = 6024;
SELECT deployed FROM ml.train('sgc', 'breast_cancer', 'diagnosis', 'logistic', deploy => 'never');
SELECT project, live_model, last_decision_model, last_decision_promoted,
       round(last_decision_p_value::numeric, 8) AS last_decision_p_value
  FROM ml.overview WHERE project IN ('bb', 'sg', 'sgc') ORDER BY project;
SELECT ml.drop_project('sgc');
SELECT count(*) AS promotions_left FROM ml.promotions WHERE model_id BETWEEN 6022 AND 6026;
