"""The inconsistency study: per-prompt Spearman tests, NaN accounting, intervals, rewards and the cache."""

import hashlib
import itertools

import numpy as np
import pytest
from scipy import stats

from dra import profiles, study
from dra.io import config_key
from dra.rewards import paper_reward
from dra.stats import pool_effects


def direct_pvalue(rewards_row, emb_group):
    """Spearman over explicit pairs i < j, written without any of the module's code."""
    xs, ys = [], []
    for i, j in itertools.combinations(range(len(rewards_row)), 2):
        xs.append(abs(rewards_row[i] - rewards_row[j]))
        a, b = emb_group[i], emb_group[j]
        ys.append(1 - a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
    res = stats.spearmanr(xs, ys)
    return res.statistic, res.pvalue


def test_prompt_pvalues_match_direct_scipy():
    rng = np.random.default_rng(0)
    rewards = rng.normal(size=(25, 6))
    emb = rng.normal(size=(25, 6, 16))
    rho, p = study.prompt_pvalues(rewards, emb)
    assert rho.shape == p.shape == (25,)
    for k in range(25):
        want_rho, want_p = direct_pvalue(rewards[k], emb[k])
        assert rho[k] == pytest.approx(want_rho, abs=1e-12)
        assert p[k] == pytest.approx(want_p, abs=1e-12)


def test_ties_in_binary_rewards_match_direct_scipy():
    rng = np.random.default_rng(1)
    rewards = rng.integers(0, 2, size=(40, 6)).astype(float)
    emb = rng.normal(size=(40, 6, 8))
    rho, p = study.prompt_pvalues(rewards, emb)
    for k in range(40):
        if np.ptp(rewards[k]) == 0:
            assert np.isnan(p[k]) and np.isnan(rho[k])
        else:
            assert p[k] == pytest.approx(direct_pvalue(rewards[k], emb[k])[1], abs=1e-12)


def test_undefined_prompts_are_nan_and_counted_separately():
    rng = np.random.default_rng(2)
    rewards = rng.normal(size=(10, 6))
    rewards[:4] = 1.0  # all completions equally rewarded: every difference is 0
    emb = rng.normal(size=(10, 6, 8))
    rho, p = study.prompt_pvalues(rewards, emb)
    assert np.isnan(p[:4]).all() and not np.isnan(p[4:]).any()
    summary = study.significant_share(p)
    assert summary.n_prompts == 10 and summary.n_defined == 6
    assert summary.share_undefined == pytest.approx(0.4)
    assert summary.n_significant == int((p[4:] < 0.05).sum())


def test_fewer_than_three_pairs_is_undefined():
    rho, p = study.prompt_pvalues(np.array([[0.0, 1.0]]), np.random.default_rng(0).normal(size=(1, 2, 4)))
    assert np.isnan(rho).all() and np.isnan(p).all()


def test_wilson_interval_and_share():
    p = np.array([0.01] * 3 + [0.5] * 17 + [np.nan] * 5)
    s = study.significant_share(p)
    ci = stats.binomtest(3, 20).proportion_ci(method="wilson")
    assert (s.share.estimate, s.share.low, s.share.high) == pytest.approx((0.15, ci.low, ci.high))


def test_cluster_bootstrap_interval_brackets_share():
    rng = np.random.default_rng(3)
    p = rng.uniform(size=300)
    clusters = np.repeat(np.arange(50), 6)
    s = study.significant_share(p, clusters=clusters)
    assert s.share.method == "cluster bootstrap" and s.share.n == 50
    assert s.share.low <= s.share.estimate <= s.share.high


def test_group_rewards_agree_with_the_reward_functions():
    texts = [
        "<think>\n5 times 1\n</think>\n<answer> \\boxed{5} </answer>",
        "<think>\nguess\n</think>\n<answer> \\boxed{6} </answer>",
        "no tags \\boxed{5}",
        "<think>\n" + "long " * 300 + "\n</think>\n<answer> \\boxed{5} </answer>",
    ]
    from dra.rewards import is_correct

    correct = np.array([[is_correct(t, "5") for t in texts]])
    got = study.group_rewards([texts], correct, "paper")[0]
    np.testing.assert_allclose(got, paper_reward(texts, answer=["5"] * 4))
    np.testing.assert_array_equal(study.group_rewards([texts], correct, "accuracy")[0], [1, 0, 1, 1])
    only_length = study.group_rewards([texts], correct, "length_only")[0]
    np.testing.assert_allclose(only_length, study.group_rewards([texts], np.ones((1, 4), bool), "cosine")[0])


def test_group_rewards_rejects_bad_input():
    with pytest.raises(ValueError, match="unknown reward"):
        study.group_rewards([["a"]], [[True]], "bleu")
    with pytest.raises(ValueError, match="same"):
        study.group_rewards([["a", "b"]], [[True]], "accuracy")


def test_pairwise_arrays_rejects_bad_shapes_and_values():
    with pytest.raises(ValueError, match=r"\(P, G\)"):
        study.pairwise_arrays(np.ones((2, 3)), np.ones((2, 4, 5)))
    with pytest.raises(ValueError, match="NaN"):
        study.pairwise_arrays(np.array([[np.nan, 1, 2]]), np.ones((1, 3, 2)))
    with pytest.raises(ValueError, match="zero norm"):
        study.pairwise_arrays(np.ones((1, 3)), np.zeros((1, 3, 2)))


def test_regroup_splits_into_disjoint_groups():
    groups, source = study.regroup([list(range(13)), list(range(5))], 6)
    assert groups == [list(range(6)), list(range(6, 12))]
    np.testing.assert_array_equal(source, [0, 0])
    with pytest.raises(ValueError, match="no prompt"):
        study.regroup([[1, 2]], 3)


class CountingEmbedder:
    name = "counting"
    max_seq_length = 8

    def __init__(self):
        self.calls = 0

    def encode(self, texts):
        self.calls += 1
        return np.stack([np.array([len(t), 1.0, t.count("a")], dtype=np.float32) for t in texts])

    def identity(self):
        return {"name": self.name, "max_seq_length": self.max_seq_length}


def test_embedding_cache_is_keyed_by_texts_and_embedder(tmp_path, monkeypatch):
    monkeypatch.setenv("DRA_CACHE_DIR", str(tmp_path))
    emb = CountingEmbedder()
    groups = [["a", "bb", "ccc"], ["aa", "b", "c"]]
    first = study.embed_groups(groups, emb)
    second = study.embed_groups(groups, emb)
    assert emb.calls == 1 and first.shape == (2, 3, 3)
    np.testing.assert_array_equal(first, second)
    study.embed_groups([["a", "bb", "cccc"], ["aa", "b", "c"]], emb)
    assert emb.calls == 2  # other texts: recomputed
    emb.max_seq_length = 16
    study.embed_groups(groups, emb)
    assert emb.calls == 3  # other embedder settings: recomputed
    # the file name is the key the cache has always used, so caches made before stay valid
    flat = "\x00".join(t for g in groups for t in g)
    key = config_key({"embedder": emb.identity(), "texts": hashlib.sha256(flat.encode()).hexdigest()})
    assert (tmp_path / "embeddings" / f"{key}.npy").is_file()


def test_grades_are_cached_by_texts_answers_and_grader(tmp_path, monkeypatch):
    from dra import rewards

    monkeypatch.setenv("DRA_CACHE_DIR", str(tmp_path))
    calls = []
    real = rewards.is_correct
    monkeypatch.setattr(rewards, "is_correct", lambda c, a, **k: calls.append(c) or real(c, a, **k))
    groups = [["<answer> \\boxed{4} </answer>", "\\boxed{5}"], ["\\boxed{7}", "no answer"]]
    first = study.grade_groups(groups, ["4", "7"])
    assert first.tolist() == [[True, False], [True, False]] and first.dtype == bool and len(calls) == 4
    assert study.grade_groups(groups, ["4", "7"]).tolist() == first.tolist() and len(calls) == 4  # read back
    assert study.grade_groups(groups, ["5", "7"]).tolist() == [[False, True], [True, False]]  # other answers
    monkeypatch.setattr(study, "_grader_identity", lambda: {"source": "another grader"})
    study.grade_groups(groups, ["4", "7"])
    assert len(calls) == 12  # a changed grader regrades
    study.grade_groups(groups, ["4", "7"], cache=False)
    assert len(calls) == 16
    with pytest.raises(ValueError, match="2 groups for 1 answers"):
        study.grade_groups(groups, ["4"])
    # a completion repeated within a group (and across groups with the same answer) is graded once
    repeated = [["\\boxed{4}", "\\boxed{4}", "x"], ["\\boxed{4}", "\\boxed{9}", "x"]]
    calls.clear()
    got = study.grade_groups(repeated, ["4", "4"], cache=False, workers=1)
    assert got.tolist() == [[True, True, False], [True, False, False]] and len(calls) == 3
    assert study.grade_groups(repeated, ["4", "4"], cache=False).tolist() == got.tolist()  # one thread per CPU


def test_samples_are_cached_by_model_files_prompts_and_every_setting(tmp_path, monkeypatch):
    monkeypatch.setenv("DRA_CACHE_DIR", str(tmp_path / "cache"))
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.safetensors").write_text("weights")
    calls = []

    def fake_sampler(model, prompts, group_size, **options):
        calls.append(options)
        return [[f"{p} {options['seed']} {i}" for i in range(group_size)] for p in prompts]

    monkeypatch.setattr(study, "sample_groups", fake_sampler)
    monkeypatch.setattr(study, "grade_groups", lambda groups, answers, cache=True: np.zeros((len(groups), 2), bool))

    def sample(model=str(model), prompts=("p", "q"), **options):
        timer = study.StageTimer()
        sg = study.policy_groups(model, list(prompts), ["1"] * len(prompts), 2, scale="t", max_new_tokens=8,
                                 timer=timer, **options)
        return sg.groups, set(timer.seconds)

    first, stages = sample(batch_size=4)
    assert len(calls) == 1 and "sampling" in stages
    again, stages = sample(batch_size=4)
    assert again == first and len(calls) == 1 and "sampling (cached)" in stages
    for changed in ({"batch_size": 8}, {"batch_size": 4, "seed": 1}, {"batch_size": 4, "prompts": ("p", "r")},
                    {"batch_size": 4, "temperature": 1.0}):
        sample(**changed)
    assert len(calls) == 5  # each setting that decides the samples is part of the key
    (model / "model.safetensors").write_text("other weights")
    sample(batch_size=4)
    assert len(calls) == 6  # a changed model file resamples
    sample(model=object(), batch_size=4)
    sample(model=object(), batch_size=4)
    assert len(calls) == 8  # a loaded model cannot be keyed: sampled every time
    sample(batch_size=4, cache=False)
    assert len(calls) == 9


@pytest.mark.slow
def test_policy_groups_sample_and_grade_at_smoke_scale(smoke_policy_dir, capsys, tmp_path, monkeypatch):
    """The mini/paper-scale path end to end with the smoke policy on the transformers backend."""
    monkeypatch.setenv("DRA_CACHE_DIR", str(tmp_path))
    task = profiles.get("smoke").mini_policy().task
    path = smoke_policy_dir
    records = task.records(task.splits().test[:4])
    timer = study.StageTimer()
    sg = study.policy_groups(str(path), [r["prompt"] for r in records], [r["answer"] for r in records], 3,
                             scale="smoke", max_new_tokens=12, seed=0, timer=timer)
    assert len(sg.groups) == 4 and all(len(g) == 3 and all(isinstance(t, str) for t in g) for g in sg.groups)
    assert sg.correct.shape == (4, 3) and sg.correct.dtype == bool
    assert set(timer.seconds) == {"sampling", "grading"}
    assert "sampling smoke: 4 prompts x 3" in capsys.readouterr().err  # the bar says what is being sampled
    timer = study.StageTimer()
    again = study.policy_groups(str(path), [r["prompt"] for r in records], [r["answer"] for r in records], 3,
                                scale="smoke", max_new_tokens=12, seed=0, timer=timer)
    assert set(timer.seconds) == {"sampling (cached)", "grading"}  # a rerun reads the samples back
    assert again.groups == sg.groups and np.array_equal(again.correct, sg.correct)
    with pytest.raises(ImportError, match="gpu"):
        study.policy_groups(str(path), [records[0]["prompt"]], ["1"], 2, scale="paper", max_new_tokens=4, backend="vllm")


# ------------------------------------------------------------------------------- effect sizes (issue 13)


def explicit_pairs(values_row, emb_group):
    """|v_i - v_j| and 1 - cos(e_i, e_j) over the pairs i < j, written without the module's code."""
    pairs = list(itertools.combinations(range(len(values_row)), 2))
    unit = emb_group / np.linalg.norm(emb_group, axis=1, keepdims=True)
    return [abs(values_row[i] - values_row[j]) for i, j in pairs], [1 - unit[i] @ unit[j] for i, j in pairs], pairs


def residual_partial_spearman(x, y, z):
    """Partial Spearman as the correlation of the residuals of rank(x) and rank(y) regressed on rank(z)."""
    rx, ry, rz = (stats.rankdata(v) for v in (x, y, z))
    design = np.column_stack([np.ones_like(rz), rz])
    res_x = rx - design @ np.linalg.lstsq(design, rx, rcond=None)[0]
    res_y = ry - design @ np.linalg.lstsq(design, ry, rcond=None)[0]
    return stats.pearsonr(res_x, res_y).statistic


def scipy_mantel(values_row, emb_group, covariate_row=None):
    """scipy.stats.permutation_test relabelling the completions of the distance matrix, statistic computed on
    the explicitly permuted pairs (exact: all G! orderings)."""
    x, _, pairs = explicit_pairs(values_row, emb_group)
    unit = emb_group / np.linalg.norm(emb_group, axis=1, keepdims=True)
    dist = 1 - unit @ unit.T
    z = None if covariate_row is None else explicit_pairs(covariate_row, emb_group)[0]

    def statistic(order):
        y = [dist[order[i], order[j]] for i, j in pairs]
        return stats.spearmanr(x, y).statistic if z is None else residual_partial_spearman(x, y, z)

    res = stats.permutation_test((np.arange(len(values_row)),), statistic, permutation_type="pairings",
                                 vectorized=False, n_resamples=10**6)
    return res.statistic, res.pvalue, np.var(res.null_distribution), res.null_distribution


@pytest.mark.parametrize("binary", [False, True])
def test_prompt_effects_match_scipy_permutation_test(binary):
    rng = np.random.default_rng(4)
    rewards = rng.integers(0, 2, size=(8, 5)).astype(float) if binary else rng.normal(size=(8, 5))
    emb = rng.normal(size=(8, 5, 6))
    eff = study.prompt_effects(rewards, emb)
    rho, p = study.prompt_pvalues(rewards, emb)
    assert eff.exact and eff.n_permutations == 120
    np.testing.assert_allclose(eff.rho, rho, atol=1e-12)
    np.testing.assert_allclose(eff.p_spearman, p, atol=1e-12)
    for k in np.flatnonzero(~np.isnan(rho)):
        want_rho, want_p, want_var, null = scipy_mantel(rewards[k], emb[k])
        assert eff.rho[k] == pytest.approx(want_rho, abs=1e-12)
        assert eff.p_permutation[k] == pytest.approx(want_p, abs=1e-12)
        assert eff.null_variance[k] == pytest.approx(want_var, abs=1e-12)
        # the t-test's size under relabelling: how many relabellings it calls significant (10 pairs, df 8)
        critical = stats.t.ppf(0.975, 8) / np.sqrt(8 + stats.t.ppf(0.975, 8) ** 2)
        assert eff.t_test_size[k] == pytest.approx(np.mean(np.abs(null) > critical))


def test_partial_effects_match_residual_definition_and_scipy():
    rng = np.random.default_rng(5)
    lengths = rng.integers(50, 500, size=(6, 5)).astype(float)
    rewards = lengths / 100 + rng.normal(size=(6, 5))
    emb = rng.normal(size=(6, 5, 6))
    eff = study.prompt_effects(rewards, emb, covariate=lengths)
    assert not np.isnan(eff.rho).any()
    for k in range(6):
        want_rho, want_p, want_var, _ = scipy_mantel(rewards[k], emb[k], lengths[k])
        assert eff.rho[k] == pytest.approx(want_rho, abs=1e-10)
        assert eff.p_permutation[k] == pytest.approx(want_p, abs=1e-12)
        assert eff.null_variance[k] == pytest.approx(want_var, abs=1e-10)
        # the t-test of a partial correlation: pairs - 3 degrees of freedom
        t = want_rho * np.sqrt(7 / (1 - want_rho**2))
        assert eff.p_spearman[k] == pytest.approx(2 * stats.t.sf(abs(t), 7), abs=1e-10)


def test_label_permutations_exact_and_sampled():
    perms, exact = study.label_permutations(5)
    assert exact and perms.shape == (120, 5) and len({tuple(p) for p in perms}) == 120
    np.testing.assert_array_equal(perms[0], np.arange(5))
    sampled, exact = study.label_permutations(8, max_permutations=300, seed=3)
    assert not exact and sampled.shape == (300, 8)
    np.testing.assert_array_equal(sampled[0], np.arange(8))
    assert all(sorted(p) == list(range(8)) for p in sampled)
    np.testing.assert_array_equal(sampled, study.label_permutations(8, max_permutations=300, seed=3)[0])
    with pytest.raises(ValueError, match="max_permutations"):
        study.label_permutations(5, max_permutations=1)
    with pytest.raises(ValueError, match="g must be"):
        study.label_permutations(1)


def test_monte_carlo_permutation_pvalues_are_seeded_and_bounded():
    rng = np.random.default_rng(6)
    rewards, emb = rng.normal(size=(5, 8)), rng.normal(size=(5, 8, 4))
    a = study.prompt_effects(rewards, emb, max_permutations=400, seed=1)
    b = study.prompt_effects(rewards, emb, max_permutations=400, seed=1)
    assert not a.exact and a.n_permutations == 400
    np.testing.assert_array_equal(a.p_permutation, b.p_permutation)
    assert (a.p_permutation >= 2 / 400).all()  # the observed ordering is one of the 400


def null_groups(rng, n_prompts, g, binary=False):
    """Rewards and embeddings drawn independently: no association in any prompt."""
    rewards = rng.normal(size=(n_prompts, g))
    if binary:
        rewards = (rewards > 0).astype(float)
    emb = rng.normal(size=(n_prompts, g, 8))
    emb[..., 0] += 2.0  # a shared direction, so that cosine distances vary like real embeddings'
    return rewards, emb


def associated_groups(rng, n_prompts, g, binary=False, strength=(1.5, 1.0), clusters=None):
    """A latent quality u drives the reward and, with a per-prompt strength a ~ N(strength), one embedding
    coordinate: heterogeneous true correlations across prompts. With `clusters` (P,), prompts of one cluster
    share their strength (groups drawn from one puzzle)."""
    ids = np.arange(n_prompts) if clusters is None else clusters
    a = rng.normal(*strength, size=ids.max() + 1)[ids][:, None, None]
    u = rng.normal(size=(n_prompts, g))
    rewards = u + 0.5 * rng.normal(size=(n_prompts, g))
    if binary:
        rewards = (rewards > 0).astype(float)
    emb = np.concatenate([a * u[..., None], rng.normal(size=(n_prompts, g, 8)) / np.sqrt(8)], axis=2)
    emb[..., -1] += 2.0
    return rewards, emb


@pytest.mark.parametrize("binary", [False, True])
def test_permutation_test_is_calibrated_and_its_variance_is_the_sampling_variance_under_the_null(binary):
    rng = np.random.default_rng(7)
    eff = study.prompt_effects(*null_groups(rng, 3000, 6, binary))
    defined = ~np.isnan(eff.rho)
    n = defined.sum()
    rejection = (eff.p_permutation[defined] < 0.05).mean()
    assert rejection <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / n)  # exact test: at most alpha
    # By exchangeability the permutation mean of rho is 0, so the mean permutation variance is rho's
    # sampling variance across prompts: 10% agreement with 3,000 prompts.
    assert np.mean(eff.rho[defined]) == pytest.approx(0, abs=3 * np.std(eff.rho[defined]) / np.sqrt(n))
    assert np.mean(eff.null_variance[defined]) == pytest.approx(np.var(eff.rho[defined]), rel=0.1)
    # likewise the t-test's rejection rate under relabelling is its rejection rate across null prompts
    assert np.mean(eff.t_test_size[defined]) == pytest.approx(np.mean(eff.p_spearman[defined] < 0.05), abs=0.015)
    if binary:  # at most C(6, 3) = 20 distinct labellings: p < 0.05 is out of reach for the permutation test
        assert (eff.p_floor[defined] >= 0.1 - 1e-12).all() and rejection == 0


def test_no_permutation_p_below_alpha_at_g4_while_the_pairs_t_test_finds_some():
    rng = np.random.default_rng(8)
    eff = study.prompt_effects(*associated_groups(rng, 400, 4))
    assert (eff.p_floor >= 2 / 24 - 1e-12).all() and (eff.p_permutation >= 2 / 24 - 1e-12).all()
    assert (eff.p_spearman < 0.05).mean() > 0.1


def test_a_perfect_rank_correlation_is_defined_like_prompt_pvalues():
    """Reward = angle, embedding = point on the circle: distance is monotone in the reward difference (all
    differences distinct and below pi), so rho = 1."""
    angles = np.array([[0.0, 0.1, 0.3, 0.7, 1.5, 3.1]] * 3) + np.array([[0.0], [0.02], [0.01]])
    emb = np.stack([np.cos(angles), np.sin(angles)], axis=2)
    eff = study.prompt_effects(angles, emb)
    rho, p = study.prompt_pvalues(angles, emb)
    np.testing.assert_allclose(eff.rho, 1.0)
    np.testing.assert_array_equal(eff.p_spearman, p)
    assert (eff.p_spearman == 0).all() and (eff.p_permutation == eff.p_floor).all()


def test_a_statistic_no_relabelling_changes_is_undefined():
    u, v = np.array([1.0, 0, 0]), np.array([0.0, 1, 0])
    emb = np.stack([u, v, u, u])[None]  # completions 0, 2, 3 identical
    eff = study.prompt_effects(np.array([[0.0, 1, 0, 1]]), emb)
    assert np.isnan(eff.rho).all() and np.isnan(eff.p_permutation).all() and np.isnan(eff.null_variance).all()


def test_prompt_effects_rejects_a_bad_covariate():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="covariate"):
        study.prompt_effects(rng.normal(size=(2, 4)), rng.normal(size=(2, 4, 3)), covariate=np.ones((2, 3)))
    with pytest.raises(ValueError, match="covariate"):
        study.prompt_effects(rng.normal(size=(2, 4)), rng.normal(size=(2, 4, 3)), covariate=np.full((2, 4), np.nan))


def coverage(rng, g, binary, n_prompts, reps, weighting="equal", clusters=None, pool_by_cluster=True):
    """Share of simulated studies whose pooled interval contains the mean per-prompt rho of the population
    (itself estimated from 20,000 simulated prompts)."""
    rewards, emb = associated_groups(rng, 20000, g, binary)
    truth = np.nanmean(study.prompt_effects(rewards, emb).rho)
    hits = []
    for _ in range(reps):
        eff = study.prompt_effects(*associated_groups(rng, n_prompts, g, binary, clusters=clusters))
        pooled = pool_effects(eff.rho, eff.null_variance, clusters=clusters if pool_by_cluster else None,
                                    weighting=weighting)
        hits.append(pooled.interval.low <= truth <= pooled.interval.high)
    return np.mean(hits)


@pytest.mark.parametrize("g, binary, reps", [(4, True, 400), (6, False, 200)])
def test_pooled_interval_covers_the_mean_correlation(g, binary, reps):
    """Heterogeneous true correlations, 60 prompts per simulated study: 95% nominal coverage (the band is about
    three Monte Carlo standard errors). Inverse-variance weights are biased at G = 4 with a 0/1 reward (the
    permutation variance depends on the same data as rho): the reason equal weighting is the default."""
    rng = np.random.default_rng(10)
    band = 3 * np.sqrt(0.05 * 0.95 / reps)
    assert 0.95 - band <= coverage(rng, g, binary, 60, reps) <= 0.95 + band
    if g == 4:
        assert coverage(rng, g, binary, 60, reps, weighting="inverse_variance") < 0.8


def test_cluster_robust_interval_covers_with_clustered_prompts():
    """40 'puzzles' x 5 groups of G = 5 sharing the puzzle's strength: the interval over puzzles keeps nominal
    coverage, the one that takes the 200 groups as independent prompts does not."""
    rng = np.random.default_rng(11)
    clusters = np.repeat(np.arange(40), 5)
    assert 0.91 <= coverage(rng, 5, False, 200, 300, clusters=clusters) <= 0.985
    assert coverage(rng, 5, False, 200, 150, clusters=clusters, pool_by_cluster=False) < 0.88


def test_share_rises_with_g_but_the_pooled_effect_barely_moves():
    """Same prompts, first 4, 6, 8 completions: the share of significant prompts rises steeply with G (power);
    the pooled correlation moves little: G = 6 lies inside the G = 8 interval, and G = 4 is lower by less
    than 15% (Spearman's rho over only 6 pairs is attenuated toward 0)."""
    rng = np.random.default_rng(12)
    rewards, emb = associated_groups(rng, 300, 8)
    shares, pooled = {}, {}
    for g in (4, 6, 8):
        eff = study.prompt_effects(rewards[:, :g], emb[:, :g], max_permutations=2000)
        shares[g] = (np.mean(eff.p_spearman < 0.05), np.mean(eff.p_permutation < 0.05))
        pooled[g] = pool_effects(eff.rho, eff.null_variance)
    assert shares[4] < shares[6] < shares[8]  # elementwise: both tests
    assert shares[8][0] - shares[4][0] > 0.3 and shares[8][1] - shares[4][1] > 0.5
    assert pooled[8].interval.low <= pooled[6].interval.estimate <= pooled[8].interval.high
    assert 0.85 * pooled[8].interval.estimate < pooled[4].interval.estimate < pooled[8].interval.estimate


def text_groups(rng, n_prompts, g):
    """Synthetic completions whose length varies, graded at random, with toy embeddings."""
    groups = [["x" * int(n) for n in rng.integers(200, 1500, size=g)] for _ in range(n_prompts)]
    return study.StudyGroups("synthetic", groups, rng.random((n_prompts, g)) < 0.5), rng.normal(size=(n_prompts, g, 6))


def test_effect_table_rows():
    rng = np.random.default_rng(13)
    sg, emb = text_groups(rng, 30, 6)
    rows = study.effect_table(sg, {"toy": emb}, [4, 6], rewards=["paper"], controls=study.CONTROLS)
    assert [(r["G"], r["reward"], r["control"]) for r in rows] == [
        (g, reward, control) for g in (4, 6) for reward, control in
        [("paper", "none"), ("paper", "|Δlength|"), (study.LENGTH_CONTROL, "none")]]
    paper6 = study.group_effects(study.first_members(sg, 6), emb, "paper")
    row = rows[3]
    assert row["pooled_estimate"] == pytest.approx(np.nanmean(paper6.rho))
    assert row["share_permutation"] == pytest.approx(np.nanmean(paper6.p_permutation < 0.05))
    assert row["exact_permutations"] and row["n_permutations"] == 720
    assert row["independent_pairs_variance"] == pytest.approx(1 / 14)
    assert row["t_test_size"] == pytest.approx(np.nanmean(paper6.t_test_size))
    partial = rows[4]
    same = ~np.isnan(study.group_effects(study.first_members(sg, 6), emb, "paper", "|Δlength|").rho)
    assert partial["uncontrolled_same_prompts_estimate"] == pytest.approx(paper6.rho[same].mean())
    lengths = study.prompt_effects(study.text_lengths(sg.groups), emb)
    assert rows[5]["pooled_estimate"] == pytest.approx(np.nanmean(lengths.rho))
    with pytest.raises(ValueError, match="unknown control"):
        study.group_effects(sg, emb, "paper", control="tokens")


def test_effect_table_computes_each_effect_once_and_equals_its_rows_one_by_one(monkeypatch):
    rng = np.random.default_rng(14)
    sg, emb = text_groups(rng, 25, 6)
    calls, distances = [], []
    original, original_distances = study.prompt_effects, study.pair_distances
    monkeypatch.setattr(study, "prompt_effects", lambda *a, **k: calls.append(1) or original(*a, **k))
    monkeypatch.setattr(study, "pair_distances", lambda e: distances.append(1) or original_distances(e))
    rows = study.effect_table(sg, {"toy": emb}, [6], rewards=["paper", "cosine"], controls=study.CONTROLS)
    assert len(calls) == 5  # (paper, cosine) x (none, |Δlength|) + the length row; the uncontrolled ones reused
    assert len(distances) == 1  # one (G, embedder): its pair distances computed once for every row
    calls.clear()
    alone = [study.effect_row(sg, emb, r, c) for r, c in
             [("paper", "none"), ("paper", "|Δlength|"), ("cosine", "none"), ("cosine", "|Δlength|"),
              (study.LENGTH_CONTROL, "none")]]
    assert len(calls) == 7  # each controlled row recomputes its uncontrolled effects
    for row, one in zip(rows, alone):
        assert set(row) == {"scale", "G", "embedder", *one}
        for key, value in one.items():
            assert repr(row[key]) == repr(value), key  # identical, NaN included


def test_cosine_rewards_are_the_reward_functions_values_exactly():
    from dra.rewards import cosine_value

    lengths = [0, 5, 5, 999, 1000, 1700, 5, 0]
    texts = [["x" * n for n in lengths], ["y" * n for n in reversed(lengths)]]
    correct = np.array([[True, False, True, True, False, True, False, False], [False] * 4 + [True] * 4])
    got = study.group_rewards(texts, correct, "cosine")
    want = [[cosine_value(bool(c), len(t)) for c, t in zip(cs, ts)] for cs, ts in zip(correct, texts)]
    assert got.tolist() == want  # bit for bit: the same function, called once per distinct (correct, length)


def test_precomputed_distances_give_the_same_tests_and_are_checked(monkeypatch):
    rng = np.random.default_rng(15)
    sg, emb = text_groups(rng, 20, 6)
    distances = study.pair_distances(emb)
    rewards = study.group_rewards(sg.groups, sg.correct, "paper")
    assert np.array_equal(study.pairwise_arrays(rewards, emb)[1], distances)
    for got, want in zip(study.prompt_pvalues(rewards, emb, distances), study.prompt_pvalues(rewards, emb)):
        np.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError, match="distances must be pair_distances"):
        study.prompt_pvalues(rewards, emb, distances[:, :5])
    calls = []
    original = study.pair_distances
    monkeypatch.setattr(study, "pair_distances", lambda e: calls.append(1) or original(e))
    rows = study.sensitivity_table(sg, {"a": emb, "b": emb[..., ::-1].copy()}, [4, 6])
    assert len(calls) == 4 and len(rows) == 2 * 2 * (len(study.REWARDS) + 1)  # once per (G, embedder)
    monkeypatch.setattr(study, "pair_distances", original)
    alone = study.run_study(sg.groups, sg.correct, emb, "paper")[0].as_dict()
    row = rows[2 * (len(study.REWARDS) + 1) + study.REWARDS.index("paper")]  # G = 6, embedder a, reward paper
    assert row == {"scale": sg.scale, "G": 6, "embedder": "a", "reward": "paper", **alone}


def test_all_wrong_advantages_against_a_hand_computation():
    """Group 0 is all wrong (two copies of one answer and a distinct one); group 1 has a right answer and is left
    out. Paper totals from the reward functions, TRL's advantage (r - mean) / (unbiased std + 1e-4), and graph-cut
    weights by hand: the copies have similarity 1 to each other and 0 to the distinct answer, so w = 1/2, 1/2, 1."""
    wrong = ["<think>\nshort\n</think>\n<answer> \\boxed{6} </answer>",
             "<think>\nshort too\n</think>\n<answer> \\boxed{6} </answer>",
             "<think>\nsomething else\n</think>\n<answer> \\boxed{7} </answer>"]
    mixed = ["<think>\nx\n</think>\n<answer> \\boxed{5} </answer>"] + wrong[:2]
    sg = study.StudyGroups("test", [wrong, mixed], np.array([[False] * 3, [True, False, False]]))
    copy, other = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    embeddings = np.array([[copy, copy, other], [copy, other, copy]])
    labels = [["copy", "copy", "other"], ["right", "copy", "other"]]
    rows = {(r["reward"], r["label"]): r for r in study.all_wrong_advantages(sg, embeddings, labels)}
    assert set(rows) == {("paper", "copy"), ("paper", "other"), ("accuracy", "copy"), ("accuracy", "other")}

    def advantages(r):
        return (r - r.mean()) / (r.std(ddof=1) + 1e-4)

    totals = np.array(paper_reward(wrong, answer=["5"] * 3))
    assert (totals > 0).all()  # well-formatted wrong answers earn a positive total
    grpo, dra_grpo = advantages(totals), advantages(totals * np.array([0.5, 0.5, 1.0]))
    assert rows[("paper", "copy")]["completions"] == 2
    assert rows[("paper", "copy")]["GRPO advantage"] == pytest.approx(grpo[:2].mean(), abs=1e-6)
    assert rows[("paper", "other")]["DRA-GRPO advantage"] == pytest.approx(dra_grpo[2], abs=1e-6)
    assert rows[("paper", "other")]["DRA-GRPO advantage"] > 0  # DRA pushes toward the distinct wrong answer
    assert all(rows[("accuracy", label)][k] == 0 for label in ("copy", "other")
               for k in ("GRPO advantage", "DRA-GRPO advantage"))
    with pytest.raises(ValueError, match="must have the groups"):
        study.all_wrong_advantages(sg, embeddings, [["copy"] * 3])


def test_distinct_correct_groups_counts_mixed_groups_with_two_correct_labels():
    sg = study.StudyGroups("test", [["x"] * 3] * 4, np.array([[True, True, False],     # mixed, one correct label
                                                             [True, True, False],     # mixed, two correct labels
                                                             [False, False, False],   # all wrong
                                                             [True, True, True]]))    # all right
    labels = [["a", "a", "b"], ["a", "b", "b"], ["a", "b", "c"], ["a", "b", "c"]]
    assert study.distinct_correct_groups(sg, labels) == {"groups": 4, "mixed": 2, "mixed_with_distinct_correct": 1}
    with pytest.raises(ValueError, match="must have the groups"):
        study.distinct_correct_groups(sg, labels[:2])


def test_advantage_by_stratum_against_a_hand_computation():
    """Kind "A": one group of 3, right answers by "a" twice and a wrong "b", so TRL's advantages are
    (1 - 2/3) / (s + 1e-4) for each "a" and (0 - 2/3) / (s + 1e-4) for "b", s = the unbiased std of (1, 1, 0);
    kind "B": one all-wrong group (no signal) and one mixed group where "b" is right once."""
    sg = study.StudyGroups("test", [["x"] * 3] * 3, np.array([[True, True, False],
                                                              [False, False, False],
                                                              [False, True, False]]))
    labels = [["a", "a", "b"], ["a", "a", "a"], ["a", "b", "a"]]
    rows = {(r["stratum"], r["label"]): r for r in study.advantage_by_stratum(sg, labels, ["A", "B", "B"])}
    s = np.std([1.0, 1.0, 0.0], ddof=1) + 1e-4
    assert rows[("A", "a")]["advantage per group"] == pytest.approx(2 * (1 / 3) / s, abs=1e-6)
    assert rows[("A", "b")]["advantage per group"] == pytest.approx(-(2 / 3) / s, abs=1e-6)
    assert rows[("B", "b")]["advantage per group"] == pytest.approx((2 / 3) / s / 2, abs=1e-6)  # one group of two
    assert rows[("B", "a")]["advantage per group"] == pytest.approx(-(2 / 3) / s / 2, abs=1e-6)
    assert rows[("B", "a")]["share"] == pytest.approx(5 / 6) and rows[("A", "b")]["share"] == pytest.approx(1 / 3)
    assert (rows[("A", "a")]["groups"], rows[("A", "a")]["mixed"], rows[("B", "a")]["groups"], rows[("B", "a")]["mixed"]) == (1, 1, 2, 1)
    for stratum in "AB":  # advantages sum to zero in every group, so over the labels of a stratum too
        assert sum(rows[(stratum, label)]["advantage per group"] for label in "ab") == pytest.approx(0, abs=1e-9)
    with pytest.raises(ValueError, match="one value per group"):
        study.advantage_by_stratum(sg, labels, ["A", "B"])
