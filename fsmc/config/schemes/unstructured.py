"""``unstructured``: magnitude pruning of single weights."""

from fsmc.config.declarations import SchemeDeclaration

SCHEME = SchemeDeclaration(
    name="unstructured",
    summary="magnitude pruning of single weights (torch.nn.utils.prune), per layer or global; "
    "the zeros stay zero through recovery",
    params=("ratio", "global_pruning"),
)
