//! The TFHE circuit's text: its parameter sets (one per key partition), a line per
//! encrypted value (its encoding, its partition when there are several, and the
//! bootstrap plan when it is a table's output), and its figures.
//!
//! ```
//! let text = r#"circuit {
//!   graph "sha256:000000000000000000000000000000000000000000000000000000000000beef"
//!   params "V1_6_PARAM_MESSAGE_2_CARRY_2_KS_PBS_GAUSSIAN_2M128" {message_bits=2, carry_bits=2, norm_budget=5.0, cost=110, log2_p_fail=-128, security_bits=128, lattice={n=866, k=1, N=2048, pbs=(1, 23), ks=(5, 3), lwe_std=2.046151696979124e-6, glwe_std=2.845267479601915e-15}}
//!   values 5
//!   inputs %1
//!   outputs %4
//!   %1 {log_delta=57}
//!   %3 {log_delta=53, linear={terms=[[0: 2], [0: 1, 1: -1]], constant=[0, 3]}}
//!   %4 {log_delta=59, lut={precision=4, offset=-1, norm=3.0}}
//!   stats {pbs=2, widest_table=(4, %4), max_norm=(3.0, %4), levelled_macs=8}
//! }"#;
//! let parsed = secc_ir::parse_circuit(text)?;
//! assert_eq!(parsed.to_string(), text);
//! # Ok::<(), secc_ir::ParseError>(())
//! ```
//!
//! `values N` is the number of graph values the circuit covers (`values N, M, L` when
//! it has `M` bootstrap plans and `L` linear maps for `N` encodings); `inputs` are the
//! values the client encrypts, `outputs` those it decrypts; values with no encoding,
//! bootstrap plan or linear map have no line. A linear map lists, per output element,
//! its `input element: weight` terms (the elements of the value's distinct encrypted
//! operands laid end to end), then the constants.

use super::{ParseError, Parser, Printer};
use crate::lowered::fhe::{Circuit, CircuitStats, FheLut, Lattice, ParamSet};
use crate::ops::LinearMap;
use std::fmt;

fn print_pair(w: &mut Printer, pair: impl FnOnce(&mut Printer), value: u32) {
    w.text("(");
    pair(w);
    w.text(&format!(", %{value})"));
}

fn parse_pair<T>(
    p: &mut Parser,
    first: impl FnOnce(&mut Parser) -> Result<T, ParseError>,
) -> Result<(T, u32), ParseError> {
    let (x, v) = p.pair("(", first, Parser::value, ")")?;
    Ok((x, v.0))
}

/// The lossless text form (see [`parse_circuit`]).
impl fmt::Display for Circuit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut w = Printer::document();
        w.text("circuit {\n  graph ");
        super::print_digest(&mut w, &self.graph_digest);
        for ps in &self.params {
            w.text("\n  params ");
            w.string(&ps.name);
            w.text(" ");
            w.record(|w| {
                w.attr("message_bits", |w| w.display(ps.message_bits));
                w.attr("carry_bits", |w| w.display(ps.carry_bits));
                w.attr("norm_budget", |w| w.f64(ps.norm_budget));
                w.attr("cost", |w| w.display(ps.cost));
                w.attr("log2_p_fail", |w| w.display(ps.log2_p_fail));
                w.attr("security_bits", |w| w.display(ps.security_bits));
                let l = &ps.lattice;
                w.attr("lattice", |w| {
                    w.record(|w| {
                        w.attr("n", |w| w.display(l.lwe_dimension));
                        w.attr("k", |w| w.display(l.glwe_dimension));
                        w.attr("N", |w| w.display(l.polynomial_size));
                        w.attr("pbs", |w| w.text(&format!("({}, {})", l.pbs_level, l.pbs_base_log)));
                        w.attr("ks", |w| w.text(&format!("({}, {})", l.ks_level, l.ks_base_log)));
                        w.attr("lwe_std", |w| w.f64(l.lwe_std));
                        w.attr("glwe_std", |w| w.f64(l.glwe_std));
                    })
                });
                if ps.searched {
                    w.attr("searched", |w| w.display(true));
                }
            });
        }
        let (n, m, l) = (self.log_delta.len(), self.luts.len(), self.linear.len());
        w.text(&format!("\n  values {n}"));
        if (m, l) != (n, n) {
            w.text(&format!(", {m}, {l}"));
        }
        for (what, values) in [("inputs", &self.inputs), ("outputs", &self.outputs)] {
            let list: Vec<String> = values.iter().map(|v| format!("%{v}")).collect();
            w.text(format!("\n  {what} {}", list.join(", ")).trim_end());
        }
        w.text("\n");
        for i in 0..n.max(m).max(l) {
            let delta = self.log_delta.get(i).copied().flatten();
            let lut = self.luts.get(i).and_then(Option::as_ref);
            let map = self.linear.get(i).and_then(Option::as_ref);
            if delta.is_none() && lut.is_none() && map.is_none() {
                continue;
            }
            w.set_context(i.to_string());
            w.text(&format!("  %{i} "));
            w.record(|w| {
                if let Some(d) = delta {
                    w.attr("log_delta", |w| w.display(d));
                }
                if let Some(part) = self.partition.get(i).copied().flatten() {
                    w.attr("partition", |w| w.display(part));
                }
                if let Some(l) = lut {
                    w.attr("lut", |w| {
                        w.record(|w| {
                            w.attr("precision", |w| w.display(l.precision));
                            w.attr("offset", |w| w.display(l.offset));
                            w.attr("norm", |w| w.f64(l.norm));
                        })
                    });
                }
                if let Some(map) = map {
                    w.attr("linear", |w| {
                        w.record(|w| {
                            w.attr("terms", |w| {
                                w.list(&map.terms, |w, t| w.list(t, |w, (i, x)| w.text(&format!("{i}: {x}"))))
                            });
                            w.attr("constant", |w| w.list(&map.constant, |w, c| w.display(c)));
                        })
                    });
                }
            });
            w.text("\n");
        }
        let s = &self.stats;
        w.text("  stats ");
        w.record(|w| {
            w.attr("pbs", |w| w.display(s.pbs));
            if let Some((bits, v)) = s.widest_table {
                w.attr("widest_table", |w| print_pair(w, |w| w.display(bits), v));
            }
            if let Some((norm, v)) = s.max_norm {
                w.attr("max_norm", |w| print_pair(w, |w| w.f64(norm), v));
            }
            w.attr("levelled_macs", |w| w.display(s.levelled_macs));
        });
        w.text("\n}");
        f.write_str(&w.finish())
    }
}

/// Reads a TFHE circuit from its text form (the output of `Display`):
///
/// ```text
/// circuit {
///   graph "sha256:HEX"                               (the quantized graph it was lowered from)
///   params "NAME" {message_bits, carry_bits, norm_budget, cost, log2_p_fail, security_bits,
///                  lattice={n, k, N, pbs=(levels, base_log), ks=(levels, base_log), lwe_std, glwe_std}[, searched=true]}
///   ...                                              (one `params` per key partition)
///   values N[, M, L]
///   inputs %V, ...                                   (what the client encrypts)
///   outputs %V, ...                                  (what it decrypts)
///   %V {log_delta=D, partition=P, lut={precision, offset, norm}, linear={terms, constant}}  (each optional;
///                                                     `partition` with more than one `params`)
///   stats {pbs, widest_table=(bits, %V), max_norm=(norm, %V), levelled_macs}
/// }
/// ```
pub fn parse_circuit(text: &str) -> Result<Circuit, ParseError> {
    let mut p = Parser::new(text)?;
    p.keyword("circuit")?;
    p.expect("{")?;
    p.keyword("graph")?;
    let graph_digest = super::parse_digest(&mut p)?;
    let mut params = Vec::new();
    while p.is_keyword("params") {
        p.keyword("params")?;
        let name = p.string()?;
        params.push(p.record(|p| {
            Ok(ParamSet {
                name,
                message_bits: p.attr("message_bits", Parser::u32)?,
                carry_bits: p.attr("carry_bits", Parser::u32)?,
                norm_budget: p.attr("norm_budget", Parser::f64)?,
                cost: p.attr("cost", Parser::u32)?,
                log2_p_fail: p.attr("log2_p_fail", Parser::i32)?,
                security_bits: p.attr("security_bits", Parser::u32)?,
                lattice: p.attr("lattice", |p| {
                    p.record(|p| {
                        let decomposition = |p: &mut Parser| p.pair("(", Parser::u32, Parser::u32, ")");
                        let lwe_dimension = p.attr("n", Parser::u32)?;
                        let glwe_dimension = p.attr("k", Parser::u32)?;
                        let polynomial_size = p.attr("N", Parser::u32)?;
                        let (pbs_level, pbs_base_log) = p.attr("pbs", decomposition)?;
                        let (ks_level, ks_base_log) = p.attr("ks", decomposition)?;
                        Ok(Lattice {
                            lwe_dimension,
                            glwe_dimension,
                            polynomial_size,
                            pbs_level,
                            pbs_base_log,
                            ks_level,
                            ks_base_log,
                            lwe_std: p.attr("lwe_std", Parser::f64)?,
                            glwe_std: p.attr("glwe_std", Parser::f64)?,
                        })
                    })
                })?,
                searched: p.opt_attr("searched", |p| p.keyword("true"))?.is_some(),
            })
        })?);
    }
    if params.is_empty() {
        return Err(p.expected("`params`"));
    }
    p.keyword("values")?;
    let count = |p: &mut Parser| {
        let here = p.error("");
        let n = p.usize()?;
        if n > p.size_limit() {
            return Err(ParseError { message: format!("{n} values is more than this text can describe"), ..here });
        }
        Ok(n)
    };
    let n = count(&mut p)?;
    let (m, l) = if p.eat(",") {
        let m = count(&mut p)?;
        p.expect(",")?;
        (m, count(&mut p)?)
    } else {
        (n, n)
    };
    let values = |p: &mut Parser, what: &str| -> Result<Vec<u32>, ParseError> {
        p.keyword(what)?;
        let mut vs = Vec::new();
        if p.at_value() {
            vs.push(p.value()?.0);
            while p.eat(",") {
                vs.push(p.value()?.0);
            }
        }
        Ok(vs)
    };
    let inputs = values(&mut p, "inputs")?;
    let outputs = values(&mut p, "outputs")?;
    let mut log_delta = vec![None; n];
    let mut partition = if params.len() > 1 { vec![None; n] } else { Vec::new() };
    let mut luts = vec![None; m];
    let mut linear = vec![None; l];
    let mut next = 0;
    let all = n.max(m).max(l);
    while p.at_value() {
        let here = p.error("");
        let v = p.value()?.index();
        if v < next || v >= all {
            let message = format!("value %{v} is out of order or beyond the {all} values");
            return Err(ParseError { message, ..here });
        }
        next = v + 1;
        let (delta, part, lut, map) = p.record(|p| {
            let delta = p.opt_attr("log_delta", Parser::u32)?;
            let part = p.opt_attr("partition", Parser::u32)?;
            let lut = p.opt_attr("lut", |p| {
                p.record(|p| {
                    Ok(FheLut {
                        precision: p.attr("precision", Parser::u32)?,
                        offset: p.attr("offset", Parser::i64)?,
                        norm: p.attr("norm", Parser::f64)?,
                    })
                })
            })?;
            let map = p.opt_attr("linear", |p| {
                p.record(|p| {
                    let term = |p: &mut Parser| {
                        let i = p.u32()?;
                        p.expect(":")?;
                        Ok((i, p.i64()?))
                    };
                    Ok(LinearMap {
                        terms: p.attr("terms", |p| p.list(|p| p.list(term)))?,
                        constant: p.attr("constant", |p| p.list(Parser::i64))?,
                    })
                })
            })?;
            Ok((delta, part, lut, map))
        })?;
        if part.is_some() && (delta.is_none() || partition.is_empty()) {
            let message = format!("%{v} names a partition, but has no encoding or the circuit has one set");
            return Err(ParseError { message, ..here });
        }
        if map.is_some() && v >= l {
            return Err(ParseError { message: format!("%{v} is beyond the {l} linear maps"), ..here });
        }
        match (delta, &lut) {
            (None, None) if map.is_none() => {
                return Err(ParseError { message: format!("%{v} has neither `log_delta`, `lut` nor `linear`"), ..here })
            }
            (Some(_), _) if v >= n => {
                return Err(ParseError { message: format!("%{v} is beyond the {n} encodings"), ..here })
            }
            (_, Some(_)) if v >= m => {
                return Err(ParseError { message: format!("%{v} is beyond the {m} tables"), ..here })
            }
            _ => {}
        }
        if let Some(d) = delta {
            log_delta[v] = Some(d);
            if let Some(slot) = partition.get_mut(v) {
                *slot = part;
            }
        }
        if let Some(l) = lut {
            luts[v] = Some(l);
        }
        if map.is_some() {
            linear[v] = map;
        }
    }
    p.keyword("stats")?;
    let stats = p.record(|p| {
        Ok(CircuitStats {
            pbs: p.attr("pbs", Parser::usize)?,
            widest_table: p.opt_attr("widest_table", |p| parse_pair(p, Parser::u32))?,
            max_norm: p.opt_attr("max_norm", |p| parse_pair(p, Parser::f64))?,
            levelled_macs: p.attr("levelled_macs", Parser::usize)?,
        })
    })?;
    p.expect("}")?;
    p.finish()?;
    Ok(Circuit { graph_digest, params, partition, log_delta, luts, linear, inputs, outputs, stats })
}
