"""What every loader shares: the opset floor, shapes as given by the user, and errors as one-line ModelLoadErrors."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

from accelc.errors import ModelLoadError
from accelc.frontend.sanity import refuse_huge_shapes
from accelc.spec import parse_shape

MIN_OPSET = 13
SHAPE_HINT = "pass --input-shape 1,1,28,28 (API: input_shape=(1,1,28,28))"

Shape = tuple[int, ...]
Shapes = list[Shape] | None  # one shape per graph input; None: take them from the model


def first_line(e: BaseException) -> str:
    """Exception text squeezed to one line: the CLI prints errors as a single line."""
    return next((ln.strip() for ln in str(e).splitlines() if ln.strip()), type(e).__name__)


def normalize_shapes(shape: Sequence[int] | Sequence[Sequence[int]] | str | None) -> Shapes:
    if shape is None or isinstance(shape, str):
        return None if shape is None else [parse_shape(shape)]
    items = list(shape)
    shapes = [tuple(s) for s in items] if items and isinstance(items[0], Sequence) else [tuple(items)]
    for s in shapes:
        if not s or not all(isinstance(d, int) and d > 0 for d in s):
            raise ModelLoadError(f"invalid input shape {s}: expected positive integers like (1,1,28,28)")
    refuse_huge_shapes(shapes, "the input shape given")  # before an exporter allocates a sample of it
    return shapes


@contextlib.contextmanager
def failing_as(what: str) -> Iterator[None]:
    """Turn any failure inside into a one-line ModelLoadError "<what>: <first line of the cause>"."""
    try:
        yield
    except ModelLoadError:
        raise
    except Exception as e:
        raise ModelLoadError(f"{what}: {first_line(e)}") from e
