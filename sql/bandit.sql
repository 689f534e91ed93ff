-- Contextual bandits: creation and its checks, choices and rewards, the
-- learned state against the decision log, regret on a seeded simulated
-- environment, Beta-Bernoulli Thompson sampling, replay evaluation, bad
-- input and privileges.

-- ---------- creation ----------
SELECT ml.create_bandit('ads', ARRAY['a', 'b', 'c'], 'linucb', '{"dim": 2, "alpha": 0.5, "seed": 7}') > 0 AS created;
SELECT algorithm, dim, features, options FROM ml.bandits WHERE name = 'ads';
SELECT arm_index, arm, state, pulls FROM ml.bandit_arms a JOIN ml.bandits b ON b.id = a.bandit_id
 WHERE b.name = 'ads' ORDER BY arm_index;
SELECT ml.create_bandit('coin', ARRAY['heads', 'tails'], 'thompson', '{"seed": 3}') > 0 AS created;
SELECT algorithm, dim, options FROM ml.bandits WHERE name = 'coin';
SELECT ml.create_bandit('shop', ARRAY['x', 'y'], 'epsilon_greedy',
                        '{"features": ["age", "income"], "epsilon": 0.2, "decay": 0.01, "seed": 5}') > 0 AS created;
SELECT algorithm, dim, features, options FROM ml.bandits WHERE name = 'shop';
-- defaults, and a seed drawn when none is given
SELECT ml.create_bandit('defaults', ARRAY['p', 'q']) > 0 AS created;
SELECT algorithm, dim, options - 'seed' AS options, (options ? 'seed') AS has_seed FROM ml.bandits WHERE name = 'defaults';

-- ---------- choices and rewards ----------
-- before any reward every arm ties: LinUCB's score is alpha * sqrt(x' x / lambda)
SELECT decision_id > 0 AS logged, arm IN ('a', 'b', 'c') AS valid_arm, round(score::numeric, 12) AS score
  FROM ml.choose('ads', ARRAY[0.6, 0.8]);
SELECT ml.reward('ads', (SELECT max(id) FROM ml.bandit_decisions), 1.0);
-- the rewarded arm's state is lambda I + x x' and b = r x, with x = (0.6, 0.8, 1)
SELECT a.arm = (SELECT ml_arm FROM (SELECT ba.arm AS ml_arm FROM ml.bandit_decisions d
                  JOIN ml.bandit_arms ba ON ba.bandit_id = d.bandit_id AND ba.arm_index = d.arm_index
                 WHERE d.id = (SELECT max(id) FROM ml.bandit_decisions)) s) AS is_chosen,
       a.state, a.pulls, a.reward_sum
  FROM ml.bandit_arms a JOIN ml.bandits b ON b.id = a.bandit_id
 WHERE b.name = 'ads' AND a.pulls > 0;
SELECT reward, rewarded_at IS NOT NULL AS rewarded, round(propensity::numeric, 6) AS propensity, context
  FROM ml.bandit_decisions WHERE id = (SELECT max(id) FROM ml.bandit_decisions);
-- a jsonb context by feature name, or as an array
SELECT arm IN ('x', 'y') AS valid_arm FROM ml.choose('shop', '{"income": 2.5, "age": 40}'::jsonb);
SELECT context FROM ml.bandit_decisions WHERE id = (SELECT max(id) FROM ml.bandit_decisions);
SELECT arm IN ('x', 'y') AS valid_arm FROM ml.choose('shop', '[41, 3.5]'::jsonb);
-- the same seed and decision id give the same draw: a decision can be replayed
SELECT ml.create_bandit('twin1', ARRAY['p', 'q', 'r'], 'thompson', '{"seed": 99}') > 0 AS created;
SELECT ml.create_bandit('twin2', ARRAY['p', 'q', 'r'], 'thompson', '{"seed": 99}') > 0 AS created;
SELECT (SELECT score FROM ml.choose('twin1')) <> (SELECT score FROM ml.choose('twin1')) AS draws_differ;
SELECT ml.bandit_evaluate('twin1', $$SELECT 'p' AS arm, 1 AS reward FROM generate_series(1, 50)$$)
     = ml.bandit_evaluate('twin2', $$SELECT 'p' AS arm, 1 AS reward FROM generate_series(1, 50)$$) AS replay_is_deterministic;

-- ---------- regret on a seeded simulated environment ----------
-- 4 arms, contexts uniform in [0,1)^3, expected reward theta_arm . x,
-- observed with N(0, 0.1) noise; regret is the best arm's expected reward
-- minus the chosen arm's.  Each round commits, as an application would.
CREATE TABLE b_regret (bandit text, rounds int, regret float8, best_share float8);
CREATE PROCEDURE b_simulate(bandit text, rounds int, marks int[])
LANGUAGE plpgsql AS $$
DECLARE
    thetas float8[] := ARRAY[[0.6, 0.1, 0.1], [0.1, 0.6, 0.1], [0.1, 0.1, 0.6], [0.3, 0.3, 0.2]];
    x float8[];
    d record;
    m float8;
    best float8;
    got float8;
    regret float8 := 0;
    nbest int := 0;
BEGIN
    FOR i IN 1..rounds LOOP
        x := ARRAY[random(), random(), random()];
        SELECT * INTO d FROM ml.choose(bandit, x);
        best := -1;
        FOR a IN 1..4 LOOP
            m := thetas[a][1] * x[1] + thetas[a][2] * x[2] + thetas[a][3] * x[3];
            best := greatest(best, m);
            IF chr(96 + a) = d.arm THEN got := m; END IF;
        END LOOP;
        regret := regret + best - got;
        IF got = best THEN nbest := nbest + 1; END IF;
        PERFORM ml.reward(bandit, d.decision_id,
                          got + 0.1 * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()));
        IF i = ANY (marks) THEN
            INSERT INTO b_regret VALUES (bandit, i, regret, nbest::float8 / i);
        END IF;
        COMMIT;
    END LOOP;
END
$$;
SELECT setseed(0.42);
SELECT ml.create_bandit('linucb', ARRAY['a', 'b', 'c', 'd'], 'linucb', '{"dim": 3, "seed": 11}') > 0 AS created;
CALL b_simulate('linucb', 50000, ARRAY[1000, 10000, 50000]);
SELECT setseed(0.42);
SELECT ml.create_bandit('lints', ARRAY['a', 'b', 'c', 'd'], 'thompson', '{"dim": 3, "v": 0.3, "seed": 11}') > 0 AS created;
CALL b_simulate('lints', 10000, ARRAY[1000, 10000]);
SELECT setseed(0.42);
SELECT ml.create_bandit('egreedy', ARRAY['a', 'b', 'c', 'd'], 'epsilon_greedy', '{"dim": 3, "epsilon": 0.2, "decay": 0.01, "seed": 11}') > 0 AS created;
CALL b_simulate('egreedy', 10000, ARRAY[1000, 10000]);
SELECT bandit, rounds, round(regret::numeric, 1) AS regret, round(best_share::numeric, 3) AS best_share
  FROM b_regret ORDER BY bandit, rounds;
-- sublinear: ten times the rounds cost less than five times the regret,
-- five times the rounds less than two and a half times; a uniformly random
-- policy's regret would grow linearly (about 0.125 per round here)
SELECT (SELECT regret FROM b_regret WHERE bandit = 'linucb' AND rounds = 10000)
     < 5 * (SELECT regret FROM b_regret WHERE bandit = 'linucb' AND rounds = 1000) AS sublinear_1k_10k,
       (SELECT regret FROM b_regret WHERE bandit = 'linucb' AND rounds = 50000)
     < 2.5 * (SELECT regret FROM b_regret WHERE bandit = 'linucb' AND rounds = 10000) AS sublinear_10k_50k,
       (SELECT regret FROM b_regret WHERE bandit = 'lints' AND rounds = 10000)
     < 5 * (SELECT regret FROM b_regret WHERE bandit = 'lints' AND rounds = 1000) AS thompson_sublinear,
       (SELECT regret FROM b_regret WHERE bandit = 'egreedy' AND rounds = 10000) < 0.05 * 10000 AS egreedy_beats_random;

-- the learned state is exactly lambda I + sum x x' and sum r x of each arm's rewarded decisions
SELECT bool_and(abs(s.state[k] - r.v) < 1e-6 * greatest(1, abs(r.v))) AS state_matches_log, count(*) AS values_checked
  FROM (SELECT a.arm_index, a.state FROM ml.bandit_arms a JOIN ml.bandits b ON b.id = a.bandit_id
         WHERE b.name = 'linucb') s
  JOIN (SELECT d.arm_index, i * 4 + j + 1 AS k,
               (CASE WHEN i = j THEN 1 ELSE 0 END) + sum((d.context || 1.0::float8)[i + 1] * (d.context || 1.0::float8)[j + 1]) AS v
          FROM ml.bandit_decisions d, generate_series(0, 3) i, generate_series(0, 3) j
         WHERE d.bandit_id = (SELECT id FROM ml.bandits WHERE name = 'linucb') AND d.reward IS NOT NULL
         GROUP BY d.arm_index, i, j
        UNION ALL
        SELECT d.arm_index, 16 + i + 1, sum(d.reward * (d.context || 1.0::float8)[i + 1])
          FROM ml.bandit_decisions d, generate_series(0, 3) i
         WHERE d.bandit_id = (SELECT id FROM ml.bandits WHERE name = 'linucb') AND d.reward IS NOT NULL
         GROUP BY d.arm_index, i) r ON r.arm_index = s.arm_index;
SELECT arm, pulls, decisions, pulls = decisions AS all_rewarded FROM ml.bandit_status WHERE bandit = 'linucb' ORDER BY arm;

-- ---------- Beta-Bernoulli Thompson sampling ----------
CREATE TABLE b_picks (round int, arm text);
CREATE PROCEDURE b_bernoulli(bandit text, rounds int)
LANGUAGE plpgsql AS $$
DECLARE
    p float8[] := ARRAY[0.2, 0.4, 0.5, 0.6, 0.75];
    d record;
BEGIN
    FOR i IN 1..rounds LOOP
        SELECT * INTO d FROM ml.choose(bandit);
        INSERT INTO b_picks VALUES (i, d.arm);
        PERFORM ml.reward(bandit, d.decision_id,
                          CASE WHEN random() < p[ascii(d.arm) - 96] THEN 1 ELSE 0 END);
        COMMIT;
    END LOOP;
END
$$;
SELECT setseed(0.17);
SELECT ml.create_bandit('beta', ARRAY['a', 'b', 'c', 'd', 'e'], 'thompson', '{"seed": 23}') > 0 AS created;
CALL b_bernoulli('beta', 10000);
-- arm e (p = 0.75) in at least 90% of the last 1,000 of 10,000 rounds
SELECT count(*) FILTER (WHERE arm = 'e') AS best_picks, count(*) FILTER (WHERE arm = 'e') >= 900 AS at_least_90_percent
  FROM b_picks WHERE round > 9000;
SELECT arm, pulls, round((state[1] / (state[1] + state[2]))::numeric, 2) AS posterior_mean
  FROM ml.bandit_arms a JOIN ml.bandits b ON b.id = a.bandit_id WHERE b.name = 'beta' AND a.arm = 'e';

-- ---------- off-policy replay evaluation ----------
-- a log of 20,000 uniformly random choices in the environment above
SELECT setseed(0.5);
CREATE TABLE b_log AS
SELECT g AS t, x AS context, (ARRAY['a', 'b', 'c', 'd'])[k] AS arm,
       (ARRAY[0.6 * x[1] + 0.1 * x[2] + 0.1 * x[3], 0.1 * x[1] + 0.6 * x[2] + 0.1 * x[3],
              0.1 * x[1] + 0.1 * x[2] + 0.6 * x[3], 0.3 * x[1] + 0.3 * x[2] + 0.2 * x[3]])[k] AS reward,
       0.25 AS propensity
  FROM (SELECT g, ARRAY[random(), random(), random()] AS x, 1 + floor(random() * 4)::int AS k
          FROM generate_series(1, 20000) g) s;
SELECT ml.create_bandit('offline', ARRAY['a', 'b', 'c', 'd'], 'linucb', '{"dim": 3, "alpha": 0.2, "seed": 1}') > 0 AS created;
SELECT e->'events' AS events, (e->>'matched')::int BETWEEN 4000 AND 6000 AS about_a_quarter_matched,
       round((e->>'logged_reward')::numeric, 3) AS logged_reward,
       (e->>'replay_reward')::float8 > (e->>'logged_reward')::float8 + 0.1 AS beats_the_random_log,
       (e->>'ips_reward')::float8 > (e->>'logged_reward')::float8 + 0.1 AS ips_agrees
  FROM ml.bandit_evaluate('offline', 'SELECT context, arm, reward, propensity FROM b_log ORDER BY t') e;
-- replay learns only on its own copy: the bandit itself is untouched
SELECT sum(pulls) AS pulls FROM ml.bandit_arms a JOIN ml.bandits b ON b.id = a.bandit_id WHERE b.name = 'offline';
-- a table name works as the log; without propensity there is no IPS figure
CREATE VIEW b_log_view AS SELECT context, arm, reward FROM b_log ORDER BY t LIMIT 100;
SELECT e ? 'ips_reward' AS has_ips, e->'events' AS events FROM ml.bandit_evaluate('offline', 'b_log_view') e;

-- ---------- bad input ----------
SELECT expect_error($$SELECT ml.create_bandit('ads', ARRAY['a', 'b'])$$);
SELECT expect_error($$SELECT ml.create_bandit('one', ARRAY['a'])$$);
SELECT expect_error($$SELECT ml.create_bandit('dup', ARRAY['a', 'b', 'a'])$$);
SELECT expect_error($$SELECT ml.create_bandit('nul', ARRAY['a', NULL])$$);
SELECT expect_error($$SELECT ml.create_bandit('emp', ARRAY['a', ''])$$);
SELECT expect_error($$SELECT ml.create_bandit('', ARRAY['a', 'b'])$$);
SELECT expect_error($$SELECT ml.create_bandit(NULL, ARRAY['a', 'b'])$$);
SELECT expect_error($$SELECT ml.create_bandit('n', NULL)$$);
SELECT expect_error($$SELECT ml.create_bandit('alg', ARRAY['a', 'b'], 'ucb1')$$);
SELECT expect_error($$SELECT ml.create_bandit('opt', ARRAY['a', 'b'], 'linucb', '{"alhpa": 1}')$$);
SELECT expect_error($$SELECT ml.create_bandit('opt', ARRAY['a', 'b'], 'linucb', '{"epsilon": 0.1}')$$);
SELECT expect_error($$SELECT ml.create_bandit('opt', ARRAY['a', 'b'], 'linucb', '{"alpha": -1}')$$);
SELECT expect_error($$SELECT ml.create_bandit('opt', ARRAY['a', 'b'], 'epsilon_greedy', '{"epsilon": 1.5}')$$);
SELECT expect_error($$SELECT ml.create_bandit('opt', ARRAY['a', 'b'], 'linucb', '{"lambda": 0}')$$);
SELECT expect_error($$SELECT ml.create_bandit('opt', ARRAY['a', 'b'], 'linucb', '{"dim": 2.5}')$$);
SELECT expect_error($$SELECT ml.create_bandit('opt', ARRAY['a', 'b'], 'linucb', '{"dim": 1000}')$$);
SELECT expect_error($$SELECT ml.create_bandit('opt', ARRAY['a', 'b'], 'linucb', '{"dim": 3, "features": ["u", "v"]}')$$);
SELECT expect_error($$SELECT ml.create_bandit('opt', ARRAY['a', 'b'], 'linucb', '{"features": ["u", "u"]}')$$);
SELECT expect_error($$SELECT ml.create_bandit('opt', ARRAY['a', 'b'], 'linucb', '{"features": "u"}')$$);
SELECT expect_error($$SELECT ml.create_bandit('opt', ARRAY['a', 'b'], 'linucb', '{"intercept": false}')$$);
SELECT expect_error($$SELECT ml.create_bandit('opt', ARRAY['a', 'b'], 'thompson', '{"v": 1}')$$);
SELECT expect_error($$SELECT ml.create_bandit('opt', ARRAY['a', 'b'], 'thompson', '{"dim": 2, "prior_alpha": 2}')$$);
SELECT expect_error($$SELECT ml.create_bandit('opt', ARRAY['a', 'b'], 'linucb', '[1, 2]')$$);
SELECT count(*) AS no_partial_bandits FROM ml.bandits WHERE name IN ('one', 'dup', 'nul', 'emp', 'alg', 'opt', 'n');
-- unknown bandit
SELECT expect_error($$SELECT * FROM ml.choose('nope', ARRAY[1.0, 2.0])$$);
SELECT expect_error($$SELECT ml.reward('nope', 1, 1)$$);
SELECT expect_error($$SELECT ml.bandit_evaluate('nope', 'b_log')$$);
SELECT expect_error($$SELECT ml.drop_bandit('nope')$$);
-- contexts of the wrong length or kind
SELECT expect_error($$SELECT * FROM ml.choose('ads', ARRAY[1.0])$$);
SELECT expect_error($$SELECT * FROM ml.choose('ads', ARRAY[1.0, 2.0, 3.0])$$);
SELECT expect_error($$SELECT * FROM ml.choose('ads', ARRAY[[1.0, 2.0]])$$);
SELECT expect_error($$SELECT * FROM ml.choose('ads', ARRAY[1.0, NULL])$$);
SELECT expect_error($$SELECT * FROM ml.choose('ads', ARRAY[1.0, 'NaN'])$$);
SELECT expect_error($$SELECT * FROM ml.choose('ads', ARRAY[1.0, '-Infinity'])$$);
SELECT expect_error($$SELECT * FROM ml.choose('ads', NULL::float8[])$$);
SELECT expect_error($$SELECT * FROM ml.choose('ads')$$);
SELECT expect_error($$SELECT * FROM ml.choose('coin', ARRAY[1.0])$$);
SELECT expect_error($$SELECT * FROM ml.choose('ads', '{"a": 1}'::jsonb)$$);
SELECT expect_error($$SELECT * FROM ml.choose('shop', '{"age": 1}'::jsonb)$$);
SELECT expect_error($$SELECT * FROM ml.choose('shop', '{"age": 1, "income": 2, "zip": 3}'::jsonb)$$);
SELECT expect_error($$SELECT * FROM ml.choose('shop', '{"age": "old", "income": 2}'::jsonb)$$);
SELECT expect_error($$SELECT * FROM ml.choose('shop', '[1]'::jsonb)$$);
SELECT expect_error($$SELECT * FROM ml.choose('shop', '7'::jsonb)$$);
-- rewards
SELECT expect_error($$SELECT ml.reward('ads', 999999999, 1)$$);
SELECT expect_error($$SELECT ml.reward('coin', (SELECT min(id) FROM ml.bandit_decisions WHERE bandit_id = (SELECT id FROM ml.bandits WHERE name = 'ads')), 1)$$);
SELECT expect_error(format('SELECT ml.reward(%L, %s, 1)', 'ads', (SELECT min(id) FROM ml.bandit_decisions WHERE bandit_id = (SELECT id FROM ml.bandits WHERE name = 'ads') AND reward IS NOT NULL)));
SELECT id AS open_decision FROM ml.choose('ads', ARRAY[1.0, 2.0]) c, LATERAL (SELECT c.decision_id AS id) s \gset
SELECT expect_error(format('SELECT ml.reward(%L, %s, %L)', 'ads', :open_decision, 'NaN'));
SELECT expect_error(format('SELECT ml.reward(%L, %s, %L)', 'ads', :open_decision, 'Infinity'));
SELECT expect_error(format('SELECT ml.reward(%L, %s, NULL)', 'ads', :open_decision));
SELECT reward IS NULL AS still_open FROM ml.bandit_decisions WHERE id = :open_decision;
SELECT id AS coin_decision FROM ml.choose('coin') c, LATERAL (SELECT c.decision_id AS id) s \gset
SELECT expect_error(format('SELECT ml.reward(%L, %s, 1.5)', 'coin', :coin_decision));
SELECT expect_error(format('SELECT ml.reward(%L, %s, -0.1)', 'coin', :coin_decision));
-- logs
SELECT expect_error($$SELECT ml.bandit_evaluate('offline', 'SELECT context, arm FROM b_log')$$);
SELECT expect_error($$SELECT ml.bandit_evaluate('offline', 'SELECT arm, reward FROM b_log')$$);
SELECT expect_error($$SELECT ml.bandit_evaluate('offline', $q$SELECT context, 'z' AS arm, reward FROM b_log$q$)$$);
-- decisions never rewarded are not events; a log without every propensity has no IPS figure
SELECT e->'events' AS events, e->'unrewarded' AS unrewarded, e->'ips_reward' AS ips_reward
  FROM ml.bandit_evaluate('offline', $$SELECT context, arm, CASE WHEN t % 2 = 0 THEN reward END AS reward,
                                              CASE WHEN t > 10 THEN propensity END AS propensity
                                         FROM b_log WHERE t <= 100 ORDER BY t$$) e;
SELECT expect_error($$SELECT ml.bandit_evaluate('offline', $q$SELECT context, arm, 'NaN'::float8 AS reward FROM b_log$q$)$$);
SELECT expect_error($$SELECT ml.bandit_evaluate('offline', 'SELECT context, arm, reward::text AS reward FROM b_log')$$);
SELECT expect_error($$SELECT ml.bandit_evaluate('offline', 'SELECT context, arm, reward, 0 AS propensity FROM b_log')$$);
SELECT expect_error($$SELECT ml.bandit_evaluate('offline', 'SELECT context[1:2] AS context, arm, reward FROM b_log')$$);
SELECT expect_error($$SELECT ml.bandit_evaluate('offline', 'no_such_log')$$);
SELECT expect_error($$SELECT ml._bandit_update('{1,2,3}', '{1}', 1)$$);
SELECT expect_error($$SELECT ml._bandit_update(array_fill(0::float8, ARRAY[65536]), array_fill(0::float8, ARRAY[65536]), 1)$$);
SELECT expect_error($$SELECT ml.create_bandit('huge', (SELECT array_agg('arm' || g) FROM generate_series(1, 1000) g), 'linucb', '{"dim": 128}')$$);
SELECT expect_error($$SELECT ml.create_bandit('huge', (SELECT array_agg('arm' || g) FROM generate_series(1, 1001) g))$$);
-- a context so large that its products overflow: the reward is refused and nothing changes
SELECT ml.create_bandit('wide', ARRAY['p', 'q'], 'linucb', '{"dim": 1, "seed": 1}') > 0 AS created;
SELECT id AS wide_decision FROM ml.choose('wide', ARRAY[1e200]) c, LATERAL (SELECT c.decision_id AS id) s \gset
SELECT expect_error(format('SELECT ml.reward(%L, %s, 1)', 'wide', :wide_decision));
SELECT sum(pulls) AS pulls, bool_and(state = '{1,0,0,1,0,0}') AS state_unchanged
  FROM ml.bandit_arms a JOIN ml.bandits b ON b.id = a.bandit_id WHERE b.name = 'wide';
SELECT arm IN ('p', 'q') AS still_chooses FROM ml.choose('wide', ARRAY[0.5]);

-- ---------- privileges ----------
CREATE ROLE bandit_outsider;
GRANT ml_user TO bandit_outsider;
GRANT USAGE ON SCHEMA ml TO bandit_outsider;
SET ROLE bandit_outsider;
SELECT count(*) AS visible_bandits FROM ml.bandits;
SELECT count(*) AS visible_decisions FROM ml.bandit_decisions;
SELECT count(*) AS visible_status FROM ml.bandit_status;
SELECT expect_error($$SELECT * FROM ml.choose('coin')$$);
SELECT expect_error($$SELECT ml.reward('coin', 1, 1)$$);
SELECT expect_error($$SELECT ml.drop_bandit('coin')$$);
SELECT expect_error($$UPDATE ml.bandit_arms SET pulls = 0$$);
SELECT expect_error($$INSERT INTO ml.bandit_decisions (bandit_id, arm_index, score) VALUES (1, 0, 0)$$);
SELECT expect_error($$SELECT ml._bandit_update('{1,0}', NULL, 1)$$);
RESET ROLE;

-- ---------- dropping ----------
SELECT ml.drop_bandit('linucb');
SELECT count(*) AS left_behind FROM ml.bandit_decisions d
 WHERE NOT EXISTS (SELECT 1 FROM ml.bandits b WHERE b.id = d.bandit_id);
SELECT count(*) AS arms_left FROM ml.bandit_arms a WHERE NOT EXISTS (SELECT 1 FROM ml.bandits b WHERE b.id = a.bandit_id);
REVOKE USAGE ON SCHEMA ml FROM bandit_outsider;
DROP ROLE bandit_outsider;
