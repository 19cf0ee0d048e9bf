use fovea_formats::{GgmlType, MappedGguf};
use fovea_kernels::isa::Isa;
use fovea_kernels::quant::vec_dot_type;
use fovea_kernels::table::QuantKernels;
fn main() {
    let f = MappedGguf::open(std::env::args().nth(1).unwrap()).unwrap();
    let g = f.gguf().unwrap();
    for name in ["blk.0.attn_q.weight", "token_embd.weight", "blk.0.ffn_down.weight"] {
        let t = g.tensor(name).unwrap();
        let data = g.tensor_data(t);
        let cols = t.dims[0] as usize;
        let rb = t.ty.bytes_for(cols as u64).unwrap() as usize;
        let mut x: Vec<f32> = (0..cols).map(|i| ((i * 7919 % 1000) as f32 / 500.0 - 1.0) * 3.7).collect();
        x[5] = 91.3;
        x[77] = -45.1;
        let partner = vec_dot_type(t.ty);
        let mut res = vec![];
        for isa in [Isa::Scalar, Isa::Avx2, Isa::Avx512] {
            let k = QuantKernels::for_isa(isa).unwrap();
            let mut act = vec![0u8; partner.bytes_for(cols as u64).unwrap() as usize];
            k.quantize_fn(partner).unwrap()(&x, &mut act);
            let dot = k.vec_dot_fn(t.ty).unwrap();
            let v: Vec<f32> = (0..64).map(|r| dot(cols, &data[r * rb..(r + 1) * rb], &act)).collect();
            res.push((isa, act, v));
        }
        for (isa, act, v) in &res[1..] {
            let maxd = v.iter().zip(&res[0].2).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
            println!(
                "{name} {:?} {isa:?}: act equal {} max dot diff {maxd} (ref[0] {} got {})",
                t.ty,
                *act == res[0].1,
                res[0].2[0],
                v[0]
            );
        }
        let _ = GgmlType::F32;
    }
}
