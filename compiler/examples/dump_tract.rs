use tract_onnx::prelude::*;
fn main() -> TractResult<()> {
    for p in std::env::args().skip(1) {
        let m = tract_onnx::onnx().model_for_path(&p)?.into_typed()?;
        println!("== {p}");
        for id in m.eval_order()? {
            let n = m.node(id);
            println!(
                "{:>3} {:<25} {:<12} {:?} -> {:?} | {:?}",
                id,
                n.name,
                n.op().name(),
                n.inputs,
                n.outputs[0].fact,
                n.op
            );
        }
    }
    Ok(())
}
