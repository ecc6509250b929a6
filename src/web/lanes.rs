//! Four f32 lanes for the decoder kernel: SIMD128 on wasm32, plain arrays elsewhere (the native
//! reference build), so that the same kernel code runs and is tested in both.

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod imp {
    use core::arch::wasm32::*;

    /// Four f32 lanes in one SIMD128 register.
    #[derive(Clone, Copy)]
    pub struct F4(v128);

    impl F4 {
        #[inline(always)]
        pub fn splat(x: f32) -> Self {
            Self(f32x4_splat(x))
        }
        /// # Safety
        /// `p` must be valid for reading four f32 values.
        #[inline(always)]
        pub unsafe fn load(p: *const f32) -> Self {
            Self(v128_load(p as *const v128))
        }
        /// # Safety
        /// `p` must be valid for reading one f32 value.
        #[inline(always)]
        pub unsafe fn load_splat(p: *const f32) -> Self {
            Self(v128_load32_splat(p as *const u32))
        }
        /// # Safety
        /// `p` must be valid for writing four f32 values.
        #[inline(always)]
        pub unsafe fn store(self, p: *mut f32) {
            v128_store(p as *mut v128, self.0)
        }
        /// self * b + c; one fused instruction when relaxed SIMD is on.
        #[inline(always)]
        pub fn mul_add(self, b: Self, c: Self) -> Self {
            #[cfg(target_feature = "relaxed-simd")]
            {
                Self(f32x4_relaxed_madd(self.0, b.0, c.0))
            }
            #[cfg(not(target_feature = "relaxed-simd"))]
            {
                Self(f32x4_add(f32x4_mul(self.0, b.0), c.0))
            }
        }
        #[inline(always)]
        pub fn add(self, b: Self) -> Self {
            Self(f32x4_add(self.0, b.0))
        }
        #[inline(always)]
        pub fn mul(self, b: Self) -> Self {
            Self(f32x4_mul(self.0, b.0))
        }
        #[inline(always)]
        pub fn div(self, b: Self) -> Self {
            Self(f32x4_div(self.0, b.0))
        }
        #[inline(always)]
        pub fn max(self, b: Self) -> Self {
            Self(f32x4_pmax(self.0, b.0))
        }
        #[inline(always)]
        pub fn min(self, b: Self) -> Self {
            Self(f32x4_pmin(self.0, b.0))
        }
        #[inline(always)]
        pub fn floor(self) -> Self {
            Self(f32x4_floor(self.0))
        }
        /// 2^n for lanes holding whole numbers in -126..=127.
        #[inline(always)]
        pub fn exp2_int(self) -> Self {
            let n = i32x4_trunc_sat_f32x4(self.0);
            Self(i32x4_shl(i32x4_add(n, i32x4_splat(127)), 23))
        }
        /// Lanes in 0..=255 as opaque gray RGBA pixels, bit-cast into the f32 lanes.
        #[inline(always)]
        pub fn gray_rgba(self) -> Self {
            let g = i32x4_trunc_sat_f32x4(self.0);
            let rgb = i32x4_mul(g, i32x4_splat(0x0001_0101));
            Self(v128_or(rgb, i32x4_splat(0xFF00_0000u32 as i32)))
        }
    }
}

#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
mod imp {
    /// Four f32 lanes as a plain array (the compiler vectorises what it can).
    #[derive(Clone, Copy)]
    pub struct F4([f32; 4]);

    impl F4 {
        #[inline(always)]
        fn map(self, f: impl Fn(f32) -> f32) -> Self {
            Self(self.0.map(f))
        }
        #[inline(always)]
        fn zip(self, b: Self, f: impl Fn(f32, f32) -> f32) -> Self {
            Self(std::array::from_fn(|i| f(self.0[i], b.0[i])))
        }
        #[inline(always)]
        pub fn splat(x: f32) -> Self {
            Self([x; 4])
        }
        /// # Safety
        /// `p` must be valid for reading four f32 values.
        #[inline(always)]
        pub unsafe fn load(p: *const f32) -> Self {
            Self(std::ptr::read_unaligned(p as *const [f32; 4]))
        }
        /// # Safety
        /// `p` must be valid for reading one f32 value.
        #[inline(always)]
        pub unsafe fn load_splat(p: *const f32) -> Self {
            Self([*p; 4])
        }
        /// # Safety
        /// `p` must be valid for writing four f32 values.
        #[inline(always)]
        pub unsafe fn store(self, p: *mut f32) {
            std::ptr::write_unaligned(p as *mut [f32; 4], self.0)
        }
        #[inline(always)]
        pub fn mul_add(self, b: Self, c: Self) -> Self {
            Self(std::array::from_fn(|i| self.0[i] * b.0[i] + c.0[i]))
        }
        #[inline(always)]
        pub fn add(self, b: Self) -> Self {
            self.zip(b, |x, y| x + y)
        }
        #[inline(always)]
        pub fn mul(self, b: Self) -> Self {
            self.zip(b, |x, y| x * y)
        }
        #[inline(always)]
        pub fn div(self, b: Self) -> Self {
            self.zip(b, |x, y| x / y)
        }
        #[inline(always)]
        pub fn max(self, b: Self) -> Self {
            self.zip(b, |x, y| if x < y { y } else { x })
        }
        #[inline(always)]
        pub fn min(self, b: Self) -> Self {
            self.zip(b, |x, y| if y < x { y } else { x })
        }
        #[inline(always)]
        pub fn floor(self) -> Self {
            self.map(f32::floor)
        }
        #[inline(always)]
        pub fn exp2_int(self) -> Self {
            self.map(|n| f32::from_bits(((n as i32 + 127) << 23) as u32))
        }
        #[inline(always)]
        pub fn gray_rgba(self) -> Self {
            self.map(|g| f32::from_bits(((g as u32) * 0x0001_0101) | 0xFF00_0000))
        }
    }
}

pub use imp::F4;
