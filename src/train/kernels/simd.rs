//! What the kernels share for speed: AVX2 dispatch on x86_64, and exp and log1p written as
//! plain arithmetic so that LLVM turns the loops that call them into SIMD.

/// Defines `$name`, which runs `$body` compiled for AVX2 when the CPU has it (x86_64 only).
///
/// The body is plain IEEE arithmetic with no FMA contraction, so both builds give the same bits.
macro_rules! avx2_dispatch {
    ($(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),*) $(-> $ret:ty)? => $body:ident) => {
        $(#[$doc])*
        fn $name($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2")]
                unsafe fn avx2($($arg: $ty),*) $(-> $ret)? {
                    $body($($arg),*)
                }
                if std::is_x86_feature_detected!("avx2") {
                    // SAFETY: the running CPU has AVX2.
                    return unsafe { avx2($($arg),*) };
                }
            }
            $body($($arg),*)
        }
    };
}

/// e^x for x in [-87, 88] (clamped outside), within about 2 ulp.
#[inline(always)]
pub(super) fn exp_approx(x: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0; // 1.5 * 2^23: adding it rounds to an integer.
    let x = x.clamp(-87.0, 88.0);
    let t = x * std::f32::consts::LOG2_E + MAGIC;
    let k = t - MAGIC;
    let ki = t.to_bits() as i32 - MAGIC.to_bits() as i32;
    let r = x - k * 0.693_359_4 - k * -2.121_944_4e-4;
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_2e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let y = p * r * r + r + 1.0;
    y * f32::from_bits(((ki + 127) as u32) << 23)
}

/// ln(1 + e) for e in [0, 1], as 2 atanh(e / (2 + e)) by its series.
#[inline(always)]
pub(super) fn log1p_unit(e: f32) -> f32 {
    let s = e / (2.0 + e);
    let s2 = s * s;
    let mut p = 1.0 / 15.0;
    p = p * s2 + 1.0 / 13.0;
    p = p * s2 + 1.0 / 11.0;
    p = p * s2 + 1.0 / 9.0;
    p = p * s2 + 1.0 / 7.0;
    p = p * s2 + 1.0 / 5.0;
    p = p * s2 + 1.0 / 3.0;
    p = p * s2 + 1.0;
    2.0 * s * p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_and_log1p_approximations_are_accurate() {
        for i in 0..=20_000 {
            let x = -87.0 + 87.0 * i as f32 / 20_000.0;
            let (got, want) = (exp_approx(x) as f64, (x as f64).exp());
            assert!(
                (got - want).abs() <= 3e-7 * want,
                "exp({x}): {got} vs {want}"
            );
            let e = i as f32 / 20_000.0;
            let (got, want) = (log1p_unit(e) as f64, (e as f64).ln_1p());
            assert!(
                (got - want).abs() <= 3e-7 * want.max(1e-30),
                "log1p({e}): {got} vs {want}"
            );
        }
    }
}
