"""``BiUNetImputer``: BiU-Net as an impbench imputer (a model, a loss and options on top of
``impbench.nn.SegmentImputer``). torch is imported when the model or the loss is built."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from impbench.nn.imputer import SegmentImputer

from .options import Options

if TYPE_CHECKING:
    import torch


class BiUNetImputer(SegmentImputer):
    """BiU-Net (Huang et al. 2025): the published 1-D U-Net, reference-free."""

    name: ClassVar[str] = "biunet"
    description: ClassVar[str] = (
        "BiU-Net (reference-free): the published 1-D U-Net; presets cpu (width 8 on haplotype rows, the default), paper, paper-text"
    )
    reference_free: ClassVar[bool] = True
    Options: ClassVar[type] = Options

    @property
    def length_multiple(self) -> int:  # type: ignore[override]
        """Segment lengths must survive the U-Net's ``depth - 1`` halvings."""
        return 2 ** (self.options.depth - 1)

    def build_model(self, in_channels: int) -> "torch.nn.Module":
        """The U-Net at the options' width and depth."""
        from .model import BiUNet

        o = self.options
        return BiUNet(in_channels, base_channels=o.base_channels, depth=o.depth, kernel_size=o.kernel_size, dropout=o.dropout, haplotypes=o.haplotypes)

    def departures_from_paper(self) -> list[str]:
        """The learning settings that differ from the ``paper`` preset (the authors' archived
        run config), as ``"field=value (paper: value)"``; the report shows them with the
        manifest's info. Budgets and execution settings (``RUNTIME_FIELDS``) and ``preset``
        are left out."""
        paper = Options.from_preset("paper").learning_fields()
        ours = self.options.learning_fields()
        return [f"{k}={ours[k]!r} (paper: {paper[k]!r})" for k in paper if k != "preset" and ours.get(k) != paper[k]]

    def manifest_info(self) -> dict:
        info = super().manifest_info()
        # Right after the preset: the report shows the start of the info.
        return {"preset": info.pop("preset", ""), "departures_from_paper": self.departures_from_paper(), **info}

    def loss(self, logits: "torch.Tensor", target: "torch.Tensor") -> "torch.Tensor":
        from impbench.nn import losses

        o = self.options
        if o.loss == "ce":
            return losses.cross_entropy(logits, target)
        if o.loss == "focal":
            return losses.focal(logits, target, gamma=o.focal_gamma, penalty=o.penalty)
        return losses.hybrid(logits, target, gamma=o.focal_gamma, penalty=o.penalty, dosage_weight=o.dosage_weight, weighted_dosage=o.weighted_dosage)
