"""Masks keep what a clerk needs to recognise a value and nothing more."""

from __future__ import annotations

import pytest

from auth.config import Mask
from auth.masking import mask_value


@pytest.mark.parametrize(
    ("mask", "value", "masked"),
    [
        (Mask.ID_NUMBER, "11010519491231002X", "110***********002X"),
        (Mask.PHONE, "13812341234", "138****1234"),
        (Mask.ADDRESS, "北京市朝阳区建国路88号3号楼2单元501室", "北京市朝阳区****"),
        (Mask.ADDRESS, "河北省保定市涿州县双塔街道12号", "河北省保定市涿州县****"),
        (Mask.ADDRESS, "内蒙古自治区呼和浩特市新城区中山路1号", "内蒙古自治区呼和浩特市新城区****"),
        (Mask.NAME, "张伟", "张*"),
    ],
)
def test_masks(mask: Mask, value: str, masked: str) -> None:
    assert mask_value(mask, value) == masked


def test_values_that_are_not_text_are_left_alone() -> None:
    assert mask_value(Mask.PHONE, None) is None
    assert mask_value(Mask.PHONE, ["13812341234"]) == ["138****1234"]
