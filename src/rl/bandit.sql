-- src/rl/bandit.sql
-- Contextual bandits: choose an arm for a context, learn from its reward.
-- The tables are written only by the functions below (src/rl/bandit.c),
-- which check that the caller is a member of the bandit's owner role.

CREATE TABLE ml.bandits (
    id         bigserial PRIMARY KEY,
    name       text NOT NULL UNIQUE,
    owner      regrole NOT NULL,
    algorithm  text NOT NULL CHECK (algorithm IN ('linucb', 'thompson', 'epsilon_greedy')),
    dim        int NOT NULL CHECK (dim >= 0),
    features   text[],
    options    jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE ml.bandits IS 'Contextual bandits (ml.create_bandit): the algorithm, the context''s length and feature names, every option in force including the seed; visible to members of the owner role.';

CREATE TABLE ml.bandit_arms (
    bandit_id  bigint NOT NULL REFERENCES ml.bandits (id) ON DELETE CASCADE,
    arm_index  int NOT NULL,
    arm        text NOT NULL,
    state      float8[] NOT NULL,
    pulls      bigint NOT NULL DEFAULT 0,
    reward_sum float8 NOT NULL DEFAULT 0,
    PRIMARY KEY (bandit_id, arm_index),
    UNIQUE (bandit_id, arm)
);
COMMENT ON TABLE ml.bandit_arms IS 'Each arm''s learned state: for the linear policies A = lambda I + sum x x'' (row-major) followed by b = sum reward x, for Beta-Bernoulli (alpha, beta); pulls counts its rewarded decisions.';

-- No foreign key to ml.bandits: each decision's key check would share-lock
-- the bandit's row, and concurrent choices would pile up multixacts on it.
-- ml.drop_bandit deletes the decisions itself.
CREATE TABLE ml.bandit_decisions (
    id          bigserial PRIMARY KEY,
    bandit_id   bigint NOT NULL,
    arm_index   int NOT NULL,
    context     float8[],
    score       float8 NOT NULL,
    propensity  float8,
    decided_at  timestamptz NOT NULL DEFAULT now(),
    reward      float8,
    rewarded_at timestamptz
);
CREATE INDEX ON ml.bandit_decisions (bandit_id, decided_at);
COMMENT ON TABLE ml.bandit_decisions IS 'Every ml.choose: the arm, the context, the score, the probability the policy chose that arm (NULL for Thompson sampling) and, once ml.reward has run, the reward.';

ALTER TABLE ml.bandits ENABLE ROW LEVEL SECURITY;
ALTER TABLE ml.bandit_arms ENABLE ROW LEVEL SECURITY;
ALTER TABLE ml.bandit_decisions ENABLE ROW LEVEL SECURITY;
CREATE POLICY bandits_of_members ON ml.bandits FOR SELECT
    USING (pg_catalog.pg_has_role(owner, 'USAGE'));
CREATE POLICY bandit_arms_of_members ON ml.bandit_arms FOR SELECT
    USING (pg_catalog.pg_has_role((SELECT b.owner FROM ml.bandits b WHERE b.id = bandit_id), 'USAGE'));
CREATE POLICY bandit_decisions_of_members ON ml.bandit_decisions FOR SELECT
    USING (pg_catalog.pg_has_role((SELECT b.owner FROM ml.bandits b WHERE b.id = bandit_id), 'USAGE'));
GRANT SELECT ON ml.bandits, ml.bandit_arms, ml.bandit_decisions TO PUBLIC;

CREATE FUNCTION ml.create_bandit(name text, arms text[], algorithm text DEFAULT 'linucb',
                                 options jsonb DEFAULT '{}')
RETURNS bigint
AS 'MODULE_PATHNAME', 'ml_create_bandit'
LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;
COMMENT ON FUNCTION ml.create_bandit(text, text[], text, jsonb) IS
'Creates a bandit over the given arms: linucb (alpha), thompson (v; Beta-Bernoulli with prior_alpha and prior_beta when there is no context) or epsilon_greedy (epsilon, decay); options dim or features fix the context, lambda the ridge prior, intercept, seed. Returns its id.';

CREATE FUNCTION ml.drop_bandit(name text) RETURNS void
AS 'MODULE_PATHNAME', 'ml_drop_bandit'
LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;
COMMENT ON FUNCTION ml.drop_bandit(text) IS 'Drops a bandit with its arms and its decisions.';

CREATE FUNCTION ml.choose(name text)
RETURNS TABLE (decision_id bigint, arm text, score float8)
AS 'MODULE_PATHNAME', 'ml_choose'
LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE ROWS 1;
CREATE FUNCTION ml.choose(name text, context float8[])
RETURNS TABLE (decision_id bigint, arm text, score float8)
AS 'MODULE_PATHNAME', 'ml_choose'
LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE ROWS 1;
CREATE FUNCTION ml.choose(name text, context jsonb)
RETURNS TABLE (decision_id bigint, arm text, score float8)
AS 'MODULE_PATHNAME', 'ml_choose'
LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE ROWS 1;
COMMENT ON FUNCTION ml.choose(text) IS 'Chooses an arm of a bandit without a context; the decision is logged under the returned id for ml.reward.';
COMMENT ON FUNCTION ml.choose(text, float8[]) IS 'Chooses an arm for a context of the bandit''s length; the decision is logged under the returned id for ml.reward.';
COMMENT ON FUNCTION ml.choose(text, jsonb) IS 'Chooses an arm for a context given as an object keyed by the bandit''s feature names, or as an array of numbers.';

CREATE FUNCTION ml.reward(name text, decision_id bigint, reward float8) RETURNS void
AS 'MODULE_PATHNAME', 'ml_reward'
LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;
COMMENT ON FUNCTION ml.reward(text, bigint, float8) IS 'Records the reward of a decision (once) and adds it to the chosen arm''s state.';

CREATE FUNCTION ml._bandit_update(state float8[], features float8[], reward float8) RETURNS float8[]
AS 'MODULE_PATHNAME', 'ml_bandit_update'
LANGUAGE C IMMUTABLE CALLED ON NULL INPUT PARALLEL SAFE;
COMMENT ON FUNCTION ml._bandit_update(float8[], float8[], float8) IS 'Internal: an arm''s state plus one reward (features NULL: a Beta-Bernoulli state).';
REVOKE EXECUTE ON FUNCTION ml._bandit_update(float8[], float8[], float8) FROM PUBLIC;

CREATE FUNCTION ml.bandit_evaluate(name text, log text) RETURNS jsonb
AS 'MODULE_PATHNAME', 'ml_bandit_evaluate'
LANGUAGE C VOLATILE CALLED ON NULL INPUT PARALLEL UNSAFE;
COMMENT ON FUNCTION ml.bandit_evaluate(text, text) IS
'Off-policy replay evaluation: a fresh copy of the bandit''s policy walks a log (table, view or query with arm, reward, context and optionally propensity) and learns from the events where it picks the logged arm; returns events, matched, replay_reward, logged_reward, ips_reward and the arms chosen.';

CREATE VIEW ml.bandit_status AS
SELECT b.name AS bandit, b.algorithm, a.arm, a.pulls, a.reward_sum,
       CASE WHEN a.pulls > 0 THEN a.reward_sum / a.pulls END AS mean_reward,
       (SELECT count(*) FROM ml.bandit_decisions d WHERE d.bandit_id = b.id AND d.arm_index = a.arm_index) AS decisions
  FROM ml.bandits b JOIN ml.bandit_arms a ON a.bandit_id = b.id;
-- read with the caller's rights, so the tables' row-level security applies
ALTER VIEW ml.bandit_status SET (security_invoker = true);
COMMENT ON VIEW ml.bandit_status IS 'Per bandit and arm: decisions, rewarded decisions (pulls), total and mean reward.';
GRANT SELECT ON ml.bandit_status TO PUBLIC;

-- what the bandits learned is data: pg_dump keeps it
SELECT pg_catalog.pg_extension_config_dump('ml.bandits', '');
SELECT pg_catalog.pg_extension_config_dump('ml.bandits_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('ml.bandit_arms', '');
SELECT pg_catalog.pg_extension_config_dump('ml.bandit_decisions', '');
SELECT pg_catalog.pg_extension_config_dump('ml.bandit_decisions_id_seq', '');
