"""CPU-independent image arithmetic for the pair renderer: the same bytes on every x86 CPU.

OpenCV, NumPy's transcendental functions, BLAS and simsimd pick code paths by CPU (SSE, AVX2, AVX-512, FMA, IPP's
own dispatch), and those paths round differently: a float GaussianBlur, resize or colour conversion differs in the
last bits between an AVX2 and an older CPU, and after rounding to uint8 a pixel moves by 1 (docs/reproducibility.md).
Everything here uses only operations whose result IEEE-754 fixes whatever the SIMD width: float64 +, -, *, /, sqrt,
comparisons, floor, rint, frexp and ldexp, element by element and always in the same order. exp and log are computed
from those (range reduction and a fixed number of series terms), not taken from NumPy or libm; sums over many
elements are written out as loops over taps, never left to BLAS.
"""
from __future__ import annotations

import math

import numpy as np

LN2 = 0.6931471805599453
SQRT_HALF = 0.7071067811865476
EXP_TERMS = 15   # Taylor terms of exp(r), |r| <= ln(2)/2: the truncation error is below 1e-17
LOG_TERMS = 14   # odd terms of atanh(s), |s| <= 0.172: the truncation error is below 1e-21

# sRGB (D65) <-> CIE XYZ, and the D65 white point: OpenCV's constants, so the colours match its COLOR_RGB2LAB.
RGB_TO_XYZ = ((0.412453, 0.357580, 0.180423), (0.212671, 0.715160, 0.072169), (0.019334, 0.119193, 0.950227))
XYZ_TO_RGB = ((3.240479, -1.53715, -0.498535), (-0.969256, 1.875991, 0.041556), (0.055648, -0.204043, 1.057311))
WHITE = (0.950456, 1.0, 1.088754)
LAB_EPSILON = 0.008856
LAB_KAPPA = 903.3


def exp(x: np.ndarray | float) -> np.ndarray:
    """e**x, float64, relative error about 1e-16; x is split into k*ln2 + r and exp(r) summed as a series."""
    x = np.asarray(x, dtype=np.float64)
    k = np.rint(x / LN2)
    r = x - k * LN2
    term = np.ones_like(r)
    total = np.ones_like(r)
    for n in range(1, EXP_TERMS):
        term = term * r / n
        total = total + term
    return np.ldexp(total, k.astype(np.int64))


def log(x: np.ndarray | float) -> np.ndarray:
    """Natural log of positive float64, relative error about 1e-16: x = m * 2**e, log m = 2 atanh((m-1)/(m+1))."""
    mantissa, exponent = np.frexp(np.asarray(x, dtype=np.float64))
    low = mantissa < SQRT_HALF
    mantissa = np.where(low, mantissa * 2.0, mantissa)
    exponent = exponent - low.astype(exponent.dtype)
    s = (mantissa - 1.0) / (mantissa + 1.0)
    s2 = s * s
    odd = s
    total = s
    for n in range(1, LOG_TERMS):
        odd = odd * s2
        total = total + odd / (2 * n + 1)
    return exponent * LN2 + 2.0 * total


def power(x: np.ndarray, exponent: float) -> np.ndarray:
    """x**exponent for x >= 0 (0 stays 0)."""
    x = np.asarray(x, dtype=np.float64)
    positive = x > 0
    return np.where(positive, exp(exponent * log(np.where(positive, x, 1.0))), 0.0)


def gaussian_weights(size: int, sigma: float) -> np.ndarray:
    """A centred Gaussian of `size` taps, summing to 1 (the sum correctly rounded by math.fsum)."""
    offsets = np.arange(size, dtype=np.float64) - (size - 1) / 2
    weights = exp(-(offsets * offsets) / (2.0 * sigma * sigma))
    return weights / math.fsum(weights.tolist())


def gaussian_kernel(sigma: float) -> np.ndarray:
    """OpenCV's kernel for a float image and this sigma: round(8 sigma + 1) taps, made odd."""
    return gaussian_weights(int(np.rint(sigma * 8 + 1)) | 1, sigma)


def reflect_101(index: np.ndarray, size: int) -> np.ndarray:
    """Indices outside 0..size-1 mirrored without repeating the edge pixel (OpenCV's BORDER_REFLECT_101)."""
    if size == 1:
        return np.zeros_like(index)
    period = 2 * (size - 1)
    index = np.mod(index, period)
    return np.where(index >= size, period - index, index)


def filter_axis(image: np.ndarray, kernel: np.ndarray, axis: int) -> np.ndarray:
    """Correlate float64 `image` along `axis` with a centred odd kernel, borders mirrored (BORDER_REFLECT_101);
    the taps are added in kernel order."""
    radius = len(kernel) // 2
    size = image.shape[axis]
    padded = np.take(image, reflect_101(np.arange(-radius, size + radius), size), axis=axis)
    out = np.zeros(image.shape, dtype=np.float64)
    for tap, weight in enumerate(kernel.tolist()):
        window = [slice(None)] * image.ndim
        window[axis] = slice(tap, tap + size)
        out = out + weight * padded[tuple(window)]
    return out


def gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur (rows, then columns) of a float HxW or HxWxC image, as float64."""
    kernel = gaussian_kernel(sigma)
    return filter_axis(filter_axis(np.asarray(image, dtype=np.float64), kernel, 1), kernel, 0)


def opencv_kernel(size: int) -> np.ndarray:
    """OpenCV's Gaussian kernel of an odd `size` with sigma 0 (derived from the size): its fixed binomial-like
    tables up to 7 taps, else a Gaussian of sigma 0.3 ((size - 1) / 2 - 1) + 0.8."""
    tables = {1: [1.0], 3: [0.25, 0.5, 0.25], 5: [0.0625, 0.25, 0.375, 0.25, 0.0625],
              7: [0.03125, 0.109375, 0.21875, 0.28125, 0.21875, 0.109375, 0.03125]}
    if size in tables:
        return np.array(tables[size])
    return gaussian_weights(size, 0.3 * ((size - 1) * 0.5 - 1) + 0.8)


def gaussian_blur_uint8(image: np.ndarray, size: int) -> np.ndarray:
    """cv2.GaussianBlur(image, (size, size), 0) of a uint8 image, rounded back to uint8."""
    kernel = opencv_kernel(size)
    return to_uint8(filter_axis(filter_axis(image.astype(np.float64), kernel, 1), kernel, 0))


def box_blur_uint8(image: np.ndarray, size: int) -> np.ndarray:
    """cv2.blur(image, (size, size)) of a uint8 image: the mean of a size x size box (anchored at size // 2 like
    OpenCV's, so an even box reaches one pixel further up and left), borders mirrored; integer sums, one division."""
    total = image.astype(np.int64)
    for axis in (1, 0):
        length = image.shape[axis]
        positions = np.arange(length)
        summed = np.zeros(total.shape, dtype=np.int64)
        for tap in range(size):
            summed = summed + np.take(total, reflect_101(positions + tap - size // 2, length), axis=axis)
        total = summed
    return to_uint8(total / (size * size))


def resize_taps(source: int, target: int) -> tuple[np.ndarray, np.ndarray]:
    """(indices, weights), both target x taps, resampling an axis of `source` pixels to `target` pixels.

    Shrinking averages the source pixels each target pixel covers, weighted by overlap (OpenCV's INTER_AREA);
    growing or keeping the size interpolates linearly between pixel centres (INTER_LINEAR), clamped at the edges.
    """
    scale = source / target
    rows: list[list[tuple[int, float]]] = []
    for i in range(target):
        if scale > 1:
            start, end = i * scale, min(float(source), (i + 1) * scale)
            taps = []
            for j in range(math.floor(start), min(source, math.ceil(end))):
                overlap = min(end, j + 1.0) - max(start, float(j))
                if overlap > 0:
                    taps.append((j, overlap))
            total = math.fsum(weight for _, weight in taps)
            rows.append([(j, weight / total) for j, weight in taps])
        else:
            centre = (i + 0.5) * scale - 0.5
            j = math.floor(centre)
            fraction = centre - j
            if j < 0:
                j, fraction = 0, 0.0
            if j >= source - 1:
                j, fraction = source - 1, 0.0
            rows.append([(j, 1.0 - fraction), (min(j + 1, source - 1), fraction)])
    width = max(len(row) for row in rows)
    indices = np.zeros((target, width), dtype=np.intp)
    weights = np.zeros((target, width), dtype=np.float64)
    for i, row in enumerate(rows):
        for t, (j, weight) in enumerate(row):
            indices[i, t], weights[i, t] = j, weight
    return indices, weights


def resize_axis(image: np.ndarray, target: int, axis: int) -> np.ndarray:
    indices, weights = resize_taps(image.shape[axis], target)
    shape = [1] * image.ndim
    shape[axis] = target
    out = np.zeros(image.shape[:axis] + (target,) + image.shape[axis + 1 :], dtype=np.float64)
    for t in range(indices.shape[1]):
        out = out + weights[:, t].reshape(shape) * np.take(image, indices[:, t], axis=axis)
    return out


def resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """HxW or HxWxC image (any dtype) to height x width, as float64: columns first, then rows."""
    out = np.asarray(image, dtype=np.float64)
    if out.shape[1] != width:
        out = resize_axis(out, width, 1)
    if out.shape[0] != height:
        out = resize_axis(out, height, 0)
    return out


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Round half to even and saturate, like OpenCV's saturate_cast<uchar>."""
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def blend_uint8(first: np.ndarray, alpha: float, second: np.ndarray, beta: float) -> np.ndarray:
    """first * alpha + second * beta of uint8 images, rounded and saturated (cv2.addWeighted with gamma 0)."""
    return to_uint8(first.astype(np.float64) * alpha + second.astype(np.float64) * beta)


def rgb_to_hsv(rgb: np.ndarray) -> np.ndarray:
    """Float RGB in [0, 1] -> HSV with H in degrees [0, 360), S and V in [0, 1] (OpenCV's float COLOR_RGB2HSV)."""
    rgb = np.asarray(rgb, dtype=np.float64)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    value = np.maximum(np.maximum(r, g), b)
    spread = value - np.minimum(np.minimum(r, g), b)
    saturation = np.where(value > 0, spread / np.where(value > 0, value, 1.0), 0.0)
    safe = np.where(spread > 0, spread, 1.0)
    hue = np.where(value == r, (g - b) * 60.0 / safe,
                   np.where(value == g, (b - r) * 60.0 / safe + 120.0, (r - g) * 60.0 / safe + 240.0))
    hue = np.where(spread > 0, hue, 0.0)
    hue = np.where(hue < 0, hue + 360.0, hue)
    return np.stack([hue, saturation, value], axis=-1)


def hsv_to_rgb(hsv: np.ndarray) -> np.ndarray:
    """HSV (H in degrees, any turn) -> float RGB (OpenCV's float COLOR_HSV2RGB)."""
    hsv = np.asarray(hsv, dtype=np.float64)
    hue, saturation, value = hsv[..., 0] / 60.0, hsv[..., 1], hsv[..., 2]
    hue = hue - 6.0 * np.floor(hue / 6.0)
    sector = np.floor(hue)
    fraction = hue - sector
    sector = np.where(sector >= 6, 0.0, sector)
    fraction = np.where(sector >= 6, 0.0, fraction)
    p = value * (1.0 - saturation)
    q = value * (1.0 - saturation * fraction)
    t = value * (1.0 - saturation * (1.0 - fraction))
    choices = [sector == n for n in range(6)]
    r = np.select(choices, [value, q, p, p, t, value])
    g = np.select(choices, [t, value, value, q, p, p])
    b = np.select(choices, [p, p, t, value, value, q])
    return np.stack([r, g, b], axis=-1)


def _mix(matrix: tuple[tuple[float, float, float], ...], a: np.ndarray, b: np.ndarray, c: np.ndarray) -> list:
    """The 3x3 matrix times the vector (a, b, c), per pixel, each row summed left to right."""
    return [row[0] * a + row[1] * b + row[2] * c for row in matrix]


def _lab_f(t: np.ndarray) -> np.ndarray:
    return np.where(t > LAB_EPSILON, power(t, 1.0 / 3.0), 7.787 * t + 16.0 / 116.0)


def srgb_to_linear(rgb: np.ndarray) -> np.ndarray:
    """sRGB gamma decoding of float RGB in [0, 1], or of uint8 RGB through a table of the same 256 values."""
    if rgb.dtype == np.uint8:
        return srgb_to_linear(np.arange(256) / 255.0)[rgb]
    rgb = np.clip(np.asarray(rgb, dtype=np.float64), 0.0, 1.0)
    return np.where(rgb <= 0.04045, rgb / 12.92, power((rgb + 0.055) / 1.055, 2.4))


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB (float in [0, 1], or uint8) -> CIELAB (D65; L in [0, 100]), OpenCV's float COLOR_RGB2LAB formulas."""
    linear = srgb_to_linear(np.asarray(rgb))
    x, y, z = _mix(RGB_TO_XYZ, linear[..., 0], linear[..., 1], linear[..., 2])
    fx, fy, fz = _lab_f(x / WHITE[0]), _lab_f(y), _lab_f(z / WHITE[2])
    lightness = np.where(y > LAB_EPSILON, 116.0 * fy - 16.0, LAB_KAPPA * y)
    return np.stack([lightness, 500.0 * (fx - fy), 200.0 * (fy - fz)], axis=-1)


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    """CIELAB -> float sRGB clipped to [0, 1] (OpenCV's float COLOR_LAB2RGB formulas)."""
    lab = np.asarray(lab, dtype=np.float64)
    lightness, a, b = lab[..., 0], lab[..., 1], lab[..., 2]
    dark = lightness <= LAB_EPSILON * LAB_KAPPA
    y = np.where(dark, lightness / LAB_KAPPA, 0.0)
    fy = np.where(dark, 7.787 * y + 16.0 / 116.0, (lightness + 16.0) / 116.0)
    y = np.where(dark, y, fy * fy * fy)
    fx, fz = a / 500.0 + fy, fy - b / 200.0
    threshold = 0.206893   # the f value at LAB_EPSILON
    x = np.where(fx > threshold, fx * fx * fx, (fx - 16.0 / 116.0) / 7.787) * WHITE[0]
    z = np.where(fz > threshold, fz * fz * fz, (fz - 16.0 / 116.0) / 7.787) * WHITE[2]
    linear = np.clip(np.stack(_mix(XYZ_TO_RGB, x, y, z), axis=-1), 0.0, 1.0)
    return np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * power(linear, 1.0 / 2.4) - 0.055)
