"""``ImputerContract``: the tests every imputer plugin must pass.

A plugin's test suite subclasses it and names its class and fast options::

    from impbench.testing import ImputerContract
    from impbench_myimputer import MyImputer

    class TestMyImputer(ImputerContract):
        imputer_cls = MyImputer
        options = {"epochs": 1}          # fast settings, fed to ``make_options``

pytest then runs every ``test_contract_*`` method below against ``MyImputer``. The data is small
(60 simulated samples x 300 variants: 40 panel, 10 validation, 10 target samples, 25% of the
target's cells masked plus one whole variant) so that a neural plugin with tiny options passes
in seconds. The imputer is fitted once per class for most checks; the determinism check fits
one more fresh instance.

Class attributes a subclass may set:

``imputer_cls``       the ``Imputer`` subclass under test (required).
``options``           dict of option values (strings or typed values), default ``{}``.
``check_registered``  False to skip the check that the plugin hook registers the class
                      (for a class defined only in a test file).
``device``            the ``RunContext.device`` (default ``"cpu"``).
``seed``              the ``RunContext.seed`` (default 0).

Masking schemes. An imputer class that declares ``schemes`` (a tuple of masking schemes it
applies to) without ``"uniform"`` (e.g. Minimac4: ``("array",)``) is checked under an
array-style mask instead: every third variant typed (observed in all target samples), every
other variant hidden in all of them (``contract_array_mask``), with ``ctx.scheme = "array"``
and ``ctx.typed`` set. Such a class must also refuse the sporadic mask with
``ImputerNotApplicable`` (``test_contract_refuses_schemes_it_does_not_support``).
"""

from __future__ import annotations

import dataclasses
import functools
import json
from types import SimpleNamespace
from typing import Any, ClassVar

import numpy as np
import pytest

from impbench.bench.settings import check_options_travel
from impbench.data.simulate import simulate_matrix
from impbench.errors import ImpbenchError, ImputerNotApplicable
from impbench.genotypes import MISSING, GenotypeMatrix, is_call
from impbench.imputers.base import (
    Imputation, Imputer, RunContext, card_option_values, check_imputation, make_options, program_options,
)
from impbench.imputers.registry import get_imputers

#: Options-field names that name a program: such a field must be declared with
#: ``impbench.imputers.base.program_option`` (so a dataset card cannot set it). A field named
#: like the imputer itself (``minimac4.minimac4``) counts too.
PROGRAM_NAMES = frozenset({"java", "python", "jar", "binary", "executable", "exe", "interpreter", "command", "cmd",
                           "launcher", "torchrun", "wrapper", "bin"})
PROGRAM_SUFFIXES = ("_jar", "_binary", "_bin", "_exe", "_executable", "_command", "_cmd", "_interpreter")

#: Sizes of the contract's data.
CONTRACT_SAMPLES = (40, 10, 10)  # panel, validation, target
CONTRACT_VARIANTS = 300
CONTRACT_MASK_RATE = 0.25
#: The target variant masked in every sample (an imputer must still answer there).
CONTRACT_FULLY_MASKED_VARIANT = 5


@functools.lru_cache(maxsize=4)
def contract_data(sim_seed: int = 11) -> tuple[GenotypeMatrix, GenotypeMatrix, GenotypeMatrix, np.ndarray]:
    """The contract's (panel, val, target truth, mask), deterministic given ``sim_seed``.

    panel, val, target : GenotypeMatrix with 40, 10, 10 samples and the same 300 variants.
    mask : bool, shape (10, 300); True where the target cell is hidden (code 0).
    Cached: callers must not modify the arrays (the contract checks copies).
    """
    n_panel, n_val, n_target = CONTRACT_SAMPLES
    full = simulate_matrix(n_samples=n_panel + n_val + n_target, sequence_length=100_000, seed=sim_seed)
    if full.n_variants < CONTRACT_VARIANTS:  # pragma: no cover - depends on msprime's output
        raise RuntimeError(f"simulation gave {full.n_variants} variants, need {CONTRACT_VARIANTS}")
    full = full.take_variants(np.arange(CONTRACT_VARIANTS))
    panel = full.take_samples(np.arange(n_panel))
    val = full.take_samples(np.arange(n_panel, n_panel + n_val))
    target = full.take_samples(np.arange(n_panel + n_val, n_panel + n_val + n_target))
    rng = np.random.default_rng(sim_seed)
    mask = rng.random(target.codes.shape) < CONTRACT_MASK_RATE
    mask[:, CONTRACT_FULLY_MASKED_VARIANT] = True
    for m in (panel, val, target):
        m.codes.setflags(write=False)
    mask.setflags(write=False)
    return panel, val, target, mask


def contract_array_mask(n_samples: int = CONTRACT_SAMPLES[2], n_variants: int = CONTRACT_VARIANTS):
    """(typed, mask) of the array-style contract mask: typed bool (n_variants,), every third
    variant from index 0; mask bool (n_samples, n_variants), True at every untyped variant
    (``CONTRACT_FULLY_MASKED_VARIANT`` among them)."""
    typed = np.arange(n_variants) % 3 == 0
    typed[CONTRACT_FULLY_MASKED_VARIANT] = False
    mask = np.broadcast_to(~typed, (n_samples, n_variants)).copy()
    typed.setflags(write=False)
    mask.setflags(write=False)
    return typed, mask


def array_only(imputer_cls: type) -> bool:
    """True when ``imputer_cls`` declares ``schemes`` that exclude ``"uniform"`` (sporadic masking)."""
    schemes = getattr(imputer_cls, "schemes", None)
    return schemes is not None and "uniform" not in tuple(schemes)


def _masked(target: GenotypeMatrix, mask: np.ndarray) -> GenotypeMatrix:
    codes = target.codes.copy()
    codes[mask] = MISSING
    return target.with_codes(codes)


def _fresh_copy(matrix: GenotypeMatrix) -> GenotypeMatrix:
    """A deep-enough copy: writable codes the imputer may (wrongly) modify in place."""
    return dataclasses.replace(matrix, codes=np.array(matrix.codes, copy=True))


class ImputerContract:
    """Base class of an imputer plugin's contract tests (not collected itself: no ``Test`` prefix)."""

    imputer_cls: ClassVar[type[Imputer]]
    options: ClassVar[dict[str, Any]] = {}
    check_registered: ClassVar[bool] = True
    device: ClassVar[str] = "cpu"
    seed: ClassVar[int] = 0

    # ------------------------------------------------------------------ helpers
    @classmethod
    def make_imputer(cls) -> Imputer:
        """A fresh instance with the class's test options."""
        options = make_options(cls.imputer_cls.Options, dict(cls.options), cls.imputer_cls.name)
        return cls.imputer_cls(options)

    @classmethod
    def make_context(cls, work_dir, scheme: str | None = None) -> RunContext:
        """The contract's context; ``scheme`` (default: "array" for an array-only imputer,
        else "uniform") goes to ``ctx.scheme``, with ``ctx.typed`` for "array"."""
        ctx = RunContext(work_dir=work_dir, device=cls.device, threads=1, seed=cls.seed, dataset="contract")
        scheme = scheme or ("array" if array_only(cls.imputer_cls) else "uniform")
        ctx.scheme = scheme  # a RunContext field once the runner passes schemes; set here either way
        if scheme == "array":
            ctx.typed = contract_array_mask()[0]
        return ctx

    @classmethod
    def fit_and_impute(cls, work_dir) -> SimpleNamespace:
        """Fit a fresh instance on fresh copies of the contract data and impute the masked target.

        Returns a namespace: imputer, ctx, panel, val, truth, mask, masked (the target given to
        ``impute``), result (unvalidated), and the inputs' codes as they were before the calls
        (``before``: dict name -> array).
        """
        panel0, val0, truth, mask = contract_data()
        if array_only(cls.imputer_cls):
            mask = contract_array_mask()[1]
        panel, val = _fresh_copy(panel0), _fresh_copy(val0)
        masked = _masked(truth, mask)
        before = {"panel": panel.codes.copy(), "val": val.codes.copy(), "target": masked.codes.copy()}
        imputer = cls.make_imputer()
        ctx = cls.make_context(work_dir)
        imputer.fit(panel, val, ctx)
        result = imputer.impute(masked, ctx)
        return SimpleNamespace(
            imputer=imputer, ctx=ctx, panel=panel, val=val, truth=truth, mask=mask,
            masked=masked, result=result, before=before,
        )

    # ------------------------------------------------------------------ fixtures
    @pytest.fixture(scope="class")
    @classmethod
    def contract_run(cls, tmp_path_factory) -> SimpleNamespace:
        """One fit + impute shared by the checks of this class."""
        return cls.fit_and_impute(tmp_path_factory.mktemp(f"contract-{cls.imputer_cls.name}"))

    @pytest.fixture(scope="class")
    @classmethod
    def imputation(cls, contract_run) -> Imputation:
        return check_imputation(cls.imputer_cls.name, contract_run.result, contract_run.masked)

    # ------------------------------------------------------------------ the contract
    def test_contract_class_attributes(self):
        cls = self.imputer_cls
        assert isinstance(cls, type) and issubclass(cls, Imputer)
        assert isinstance(cls.name, str) and cls.name and cls.name == cls.name.strip()
        assert all(c.isalnum() or c in "-_" for c in cls.name), f"name {cls.name!r}: use letters, digits, - and _"
        assert isinstance(cls.reference_free, bool)
        assert dataclasses.is_dataclass(cls.Options), "Options must be a dataclass"
        defaults = cls.Options()  # every field must have a default
        # options travel as JSON (manifest, fit key, workers) and must come back unchanged
        check_options_travel(cls.name, cls, defaults)
        check_options_travel(cls.name, cls, self.make_imputer().options)

    def test_contract_program_options_refused_from_cards(self):
        """Options that name a program are declared so (``program_option``) and a dataset card
        setting one is refused with one line naming the card and the key."""
        cls = self.imputer_cls
        declared = set(program_options(cls.Options))
        for f in dataclasses.fields(cls.Options):
            looks = f.name in PROGRAM_NAMES or f.name.endswith(PROGRAM_SUFFIXES) or f.name == cls.name
            assert not looks or f.name in declared, (
                f"option {cls.name}.{f.name} looks like a program: declare it with program_option() so that "
                "a dataset card cannot set it")
        for key in sorted(declared):
            with pytest.raises(ImpbenchError) as info:
                card_option_values(cls.Options, {key: "/tmp/not-a-program"}, cls.name, "shared/card.toml")
            message = str(info.value)
            assert "\n" not in message and "shared/card.toml" in message and key in message, message
            make_options(cls.Options, {key: "/tmp/from-the-command-line"}, cls.name)  # --opt may set it
        others = {f.name: getattr(cls.Options(), f.name) for f in dataclasses.fields(cls.Options) if f.name not in declared}
        assert card_option_values(cls.Options, others, cls.name, "card.toml") == others

    def test_contract_registered_through_hook(self):
        if not self.check_registered:
            pytest.skip("check_registered = False")
        imputers = get_imputers()
        assert self.imputer_cls.name in imputers, (
            f"{self.imputer_cls.name!r} is not registered through the impbench entry point "
            f"(registered: {', '.join(imputers)})"
        )
        assert imputers[self.imputer_cls.name].cls is self.imputer_cls

    def test_contract_shapes_and_dtypes(self, contract_run, imputation):
        n, m = contract_run.masked.codes.shape
        assert imputation.calls.shape == (n, m) and imputation.calls.dtype == np.uint8
        assert is_call(imputation.calls).all(), "calls must be codes 1-4 everywhere"
        dosage = np.asarray(imputation.dosage)
        assert dosage.shape == (n, m) and dosage.dtype == np.float32
        assert np.isfinite(dosage).all() and dosage.min() >= -1e-4 and dosage.max() <= 2 + 1e-4
        covered = np.asarray(imputation.covered)
        assert covered.shape == (m,) and covered.dtype == bool
        if imputation.probs is not None:
            probs = np.asarray(imputation.probs)
            assert probs.shape == (n, m, 4) and probs.dtype == np.float32
            assert np.isfinite(probs).all() and probs.min() >= -1e-6
            np.testing.assert_allclose(probs.sum(axis=-1), 1.0, atol=1e-3)

    def test_contract_observed_cells_kept(self, contract_run, imputation):
        observed = ~contract_run.mask
        kept = imputation.calls[observed] == contract_run.truth.codes[observed]
        assert kept.all(), f"{int((~kept).sum())} observed cells changed by impute()"

    def test_contract_answers_fully_masked_variant(self, contract_run, imputation):
        column = imputation.calls[:, CONTRACT_FULLY_MASKED_VARIANT]
        assert is_call(column).all()

    def test_contract_inputs_not_mutated(self, contract_run):
        for name, matrix in (("panel", contract_run.panel), ("val", contract_run.val), ("target", contract_run.masked)):
            assert np.array_equal(matrix.codes, contract_run.before[name]), f"{name} codes were modified in place"

    def test_contract_manifest_info_is_json(self, contract_run):
        info = contract_run.imputer.manifest_info()
        assert isinstance(info, dict)
        json.dumps(info)

    def test_contract_deterministic_with_seed(self, contract_run, imputation, tmp_path):
        again = type(self).fit_and_impute(tmp_path / "again")
        second = check_imputation(self.imputer_cls.name, again.result, again.masked)
        assert np.array_equal(imputation.calls, second.calls), "two fresh instances, same seed: different calls"
        np.testing.assert_allclose(imputation.dosage, second.dosage, rtol=0, atol=1e-5)

    def test_contract_refuses_schemes_it_does_not_support(self, contract_run):
        if not array_only(self.imputer_cls):
            pytest.skip("the imputer applies to sporadic masking")
        _, _, truth, sporadic = contract_data()
        ctx = self.make_context(contract_run.ctx.work_dir, scheme="uniform")
        with pytest.raises(ImputerNotApplicable) as info:
            contract_run.imputer.impute(_masked(truth, sporadic), ctx)
        assert info.value.scheme == "uniform" and "\n" not in str(info.value)

    def test_contract_rejects_target_with_other_variants(self, contract_run):
        imputer, ctx, masked = contract_run.imputer, contract_run.ctx, contract_run.masked
        fewer = masked.take_variants(np.arange(masked.n_variants - 7))
        with pytest.raises(ImpbenchError) as info:
            imputer.impute(fewer, ctx)
        assert str(info.value) and "\n" not in str(info.value)
        shifted = dataclasses.replace(masked, positions=masked.positions + 1)
        with pytest.raises(ImpbenchError):
            imputer.impute(shifted, ctx)
