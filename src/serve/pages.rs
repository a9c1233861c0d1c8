//! The pages: home, search, a medium with its history, a certificate with its
//! signatures checked again, the files to download, and errors.

use std::fmt::Write as _;

use serde_json::Value;

use super::html::{self, attr, label, lang_query, rows, segment, text};
use super::{MAX_QUERY, Request, Response, Site};
use crate::cert::files::Bundle;
use crate::cert::judge::{Judgement as Checked, Verdict};
use crate::cert::pdf::Lang;
use crate::ledger::{Entry, LedgerError, Medium};

pub fn error(lang: Lang, status: u16, zh: &str, en: &str) -> Response {
    let body = format!("<p class=\"bad\">{}</p>{}", label(lang, zh, en), html::search_form(lang, ""));
    Response::html(status, html::page(lang, &crate::cert::pdf::both(lang, zh, en), &body))
}

pub fn not_found(lang: Lang) -> Response {
    error(lang, 404, "未找到", "Not found")
}

pub fn ledger_error(lang: Lang, failure: &LedgerError) -> Response {
    let body = format!(
        "<p class=\"bad\">{}</p><p>{}</p>",
        label(lang, "台帐无法读取", "The ledger could not be read"),
        text(&failure.to_string())
    );
    Response::html(500, html::page(lang, &crate::cert::pdf::both(lang, "错误", "Error"), &body))
}

pub fn home(request: &Request) -> Response {
    let lang = request.lang;
    let body = format!(
        "{}<p class=\"note\">{}</p>",
        html::search_form(lang, ""),
        label(
            lang,
            "可输入台帐编号、介质序列号、证书编号，或扫描纸质证书上的二维码。",
            "Enter a ledger number, a medium's serial, a certificate id, or scan the QR code of a printed certificate."
        )
    );
    Response::html(
        200,
        html::page(lang, &crate::cert::pdf::both(lang, "涉密介质台帐", "Media ledger"), &body),
    )
}

/// A certificate id: a UUID, lowercase, nothing else.
fn is_id(text: &str) -> bool {
    text.len() == 36
        && text.char_indices().all(|(i, c)| {
            if [8, 13, 18, 23].contains(&i) {
                c == '-'
            } else {
                c.is_ascii_hexdigit() && !c.is_ascii_uppercase()
            }
        })
}

fn is_sha256(text: &str) -> bool {
    text.len() == 64 && text.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
}

/// `certwipe:<id>:sha256:<hex>` (a QR code's text), or a pasted page address
/// `…/c/<id>?sha256=<hex>`: the certificate id and the hash.
fn scanned(query: &str) -> Option<(String, Option<String>)> {
    if let Some(rest) = query.strip_prefix("certwipe:") {
        let (id, sha) = rest.split_once(":sha256:")?;
        return (is_id(id) && is_sha256(sha)).then(|| (id.to_string(), Some(sha.to_string())));
    }
    let (_, tail) = query.rsplit_once("/c/")?;
    let (id, query) = tail.split_once('?').unwrap_or((tail, ""));
    let sha =
        form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "sha256").map(|(_, v)| v.into_owned());
    is_id(id).then(|| (id.to_string(), sha.filter(|s| is_sha256(s))))
}

fn certificate_link(id: &str, sha: Option<&str>, lang: Lang) -> String {
    match sha {
        Some(sha) => format!("/c/{id}?sha256={sha}&{}", lang_query(lang)),
        None => format!("/c/{id}?{}", lang_query(lang)),
    }
}

pub fn search(site: &mut Site, request: &Request) -> Result<Response, LedgerError> {
    let lang = request.lang;
    let query = request.param("q").unwrap_or("").trim();
    if query.is_empty() {
        return Ok(home(request));
    }
    if query.chars().count() > MAX_QUERY {
        return Ok(error(lang, 400, "查询内容过长", "The query is too long"));
    }
    if let Some((id, sha)) = scanned(query) {
        return Ok(Response::redirect(certificate_link(&id, sha.as_deref(), lang)));
    }
    if is_id(query) && site.ledger.filed(query)?.is_some() {
        return Ok(Response::redirect(certificate_link(query, None, lang)));
    }
    // By ledger number, else by serial.
    if let Some(medium) = site.ledger.find_medium(Some(query), Some(query))? {
        return Ok(Response::redirect(format!("/m/{}?{}", segment(&medium.number), lang_query(lang))));
    }
    let body = format!(
        "{}<p class=\"bad\">{} {}</p>",
        html::search_form(lang, query),
        label(lang, "未找到：", "Nothing found for"),
        text(query)
    );
    Ok(Response::html(404, html::page(lang, &crate::cert::pdf::both(lang, "查询", "Search"), &body)))
}

pub fn medium(site: &mut Site, request: &Request, number: &str) -> Result<Response, LedgerError> {
    let lang = request.lang;
    let (medium, history, unrecorded) = match site.ledger.history(number) {
        Ok(found) => found,
        Err(LedgerError::UnknownNumber(_)) => return Ok(not_found(lang)),
        Err(error) => return Err(error),
    };
    let chain = site.chain_state()?;
    let mut body = html::search_form(lang, "");
    if let Some(why) = unrecorded {
        let _ = write!(
            body,
            "<p class=\"bad\">{} ({})</p>",
            label(
                lang,
                "下列信息与台帐签名记录不符",
                "What follows is NOT what the ledger's signed history records"
            ),
            text(&why)
        );
    }
    body += &rows(&medium_rows(lang, &medium));
    let state = if chain.problems.is_empty() {
        format!(
            "<p class=\"ok\">{} ({} {})</p>",
            label(lang, "台帐完整，签名有效", "Ledger intact, every signature valid"),
            chain.entries,
            label(lang, "条记录", "entries")
        )
    } else {
        let problems: String = chain.problems.iter().map(|p| format!("<li>{}</li>", text(p))).collect();
        format!(
            "<p class=\"bad\">{}</p><ul>{problems}</ul>",
            label(lang, "台帐校验未通过", "The ledger does NOT verify")
        )
    };
    body += &state;
    let _ = write!(body, "<h2>{}</h2>{}", label(lang, "全部记录", "History"), history_table(lang, &history));
    let title = format!("{} {}", crate::cert::pdf::both(lang, "介质", "Medium"), medium.number);
    Ok(Response::html(200, html::page(lang, &title, &body)))
}

fn medium_rows(lang: Lang, m: &Medium) -> Vec<(String, String)> {
    let or_dash = |v: &Option<String>| text(v.as_deref().unwrap_or("-"));
    vec![
        (label(lang, "台帐编号", "Ledger number"), text(&m.number)),
        (label(lang, "介质类型", "Media type"), text(&m.media_type)),
        (
            label(lang, "密级", "Classification"),
            text(&format!("{} ({})", m.classification.chinese(), m.classification.english())),
        ),
        (label(lang, "责任人/部门", "Holder"), or_dash(&m.holder)),
        (label(lang, "序列号", "Serial"), or_dash(&m.serial)),
        (label(lang, "备注", "Notes"), or_dash(&m.notes)),
    ]
}

fn history_table(lang: Lang, history: &[Entry]) -> String {
    let mut out = format!(
        "<table><tr><th>#</th><th>{}</th><th>{}</th><th>{}</th></tr>",
        label(lang, "时间", "Time"),
        label(lang, "事项", "Event"),
        label(lang, "内容", "Details")
    );
    for entry in history {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            entry.seq,
            text(&entry.at),
            kind_label(lang, &entry.kind),
            details(lang, entry)
        );
    }
    out + "</table>"
}

fn kind_label(lang: Lang, kind: &str) -> String {
    match kind {
        "register" => label(lang, "登记", "registered"),
        "certificate" => label(lang, "销毁证书", "certificate"),
        "countersignature" => label(lang, "会签", "countersignature"),
        "approval" => label(lang, "审批", "approval"),
        "disposal" => label(lang, "去向", "disposal"),
        "destruction" => label(lang, "实物销毁", "destruction"),
        "reclassify" => label(lang, "密级调整", "classification raised"),
        other => text(other),
    }
}

/// An entry's content in a line; only named fields, each escaped, the absent
/// ones left out.
fn details(lang: Lang, entry: &Entry) -> String {
    let d = &entry.data;
    let field = |name: &str| match &d[name] {
        Value::Null => String::new(),
        Value::String(s) => text(s),
        other => text(&other.to_string()),
    };
    let tidy = |line: String| line.split_whitespace().collect::<Vec<_>>().join(" ");
    match entry.kind.as_str() {
        "certificate" => {
            let id = d["certificate_id"].as_str().unwrap_or("");
            let link = if is_id(id) {
                format!("<a href=\"{}\">{}</a>", attr(&certificate_link(id, None, lang)), text(id))
            } else {
                text(id)
            };
            // A wipe nobody read back says so next to its result.
            let unverified = if d["verify_mode"] == "off" {
                format!(" ({})", label(lang, "未回读验证", "not read back"))
            } else {
                String::new()
            };
            format!(
                "{link}: {} {}{unverified}, {} {}, {} {}",
                field("status"),
                field("category"),
                label(lang, "方法", "method"),
                field("method"),
                label(lang, "操作人", "operator"),
                field("operator")
            )
        }
        "countersignature" => format!("{} {} ({})", field("role"), field("name"), field("certificate_id")),
        "approval" => {
            tidy(format!("{} {} {} {}", field("role"), field("name"), field("title"), field("note")))
        }
        "disposal" => tidy(format!("{} {}", field("destination"), field("note"))),
        "destruction" => format!(
            "{} {}, {} {}, {} {}, {} {}",
            field("method"),
            field("date"),
            label(lang, "地点", "place"),
            field("place"),
            label(lang, "销毁人", "destroyer"),
            field("destroyer"),
            label(lang, "监销人", "witness"),
            field("witness")
        ),
        "register" => tidy(format!("{} {}", field("classification"), field("holder"))),
        "reclassify" => format!("{} → {}", field("from"), field("to")),
        _ => text(&d.to_string()),
    }
}

/// `/c/<id>`: the certificate page.
pub fn certificate(site: &mut Site, request: &Request, id: &str) -> Result<Response, LedgerError> {
    let lang = request.lang;
    if !is_id(id) {
        return Ok(not_found(lang));
    }
    let Some(filed) = site.ledger.filed(id)? else { return Ok(not_found(lang)) };
    let checked = filed.judge(Some(&site.allowed));
    let bundle = filed.bundle;
    let mut body = html::search_form(lang, "");
    body += &verdict(lang, &checked, request.param("sha256"));
    if let Some(cert) = &checked.certificate {
        body += &certificate_rows(lang, cert);
    }
    body += &signature_list(lang, &checked);
    body += &downloads(lang, id, &bundle);
    let title = format!("{} {id}", crate::cert::pdf::both(lang, "销毁证书", "Certificate"));
    Ok(Response::html(200, html::page(lang, &title, &body)))
}

fn verdict(lang: Lang, checked: &Checked, scanned_sha: Option<&str>) -> String {
    let mut out = match checked.verdict() {
        Verdict::Valid => format!(
            "<p class=\"ok\">{}</p>",
            label(
                lang,
                "证书有效：签名人均在授权名单内，内容自洽",
                "VALID: signed by allowed signers, content consistent"
            )
        ),
        _ => {
            let reasons: String = checked.reasons().iter().map(|r| format!("<li>{}</li>", text(r))).collect();
            format!("<p class=\"bad\">{}</p><ul>{reasons}</ul>", label(lang, "证书无效", "NOT VALID"))
        }
    };
    match scanned_sha {
        Some(sha) if sha == checked.sha256 => {
            let _ = write!(
                out,
                "<p class=\"ok\">{}</p>",
                label(lang, "与纸质证书二维码一致", "Matches the printed certificate's QR code")
            );
        }
        Some(_) => {
            let _ = write!(
                out,
                "<p class=\"bad\">{}</p>",
                label(
                    lang,
                    "与纸质证书二维码不一致：纸质证书与存档文件不是同一份",
                    "Does NOT match the printed certificate's QR code: the paper and this record differ"
                )
            );
        }
        None => {}
    }
    out
}

fn certificate_rows(lang: Lang, cert: &crate::cert::Certificate) -> String {
    let s = &cert.sanitization;
    let m = &cert.medium;
    let r = &cert.records;
    let or_dash = |v: &Option<String>| text(v.as_deref().unwrap_or("-"));
    let mut table = vec![
        (
            label(lang, "结果", "Result"),
            format!("<b>{}</b> — {}", text(s.status.as_str()), text(&s.status_reason)),
        ),
        (
            label(lang, "类别", "Category"),
            text(&format!("{} ({})", s.category.as_str(), s.technique.as_str())),
        ),
        (label(lang, "方法", "Method"), text(&format!("{} ({})", s.method.name, s.method.id))),
        (label(lang, "台帐编号", "Ledger number"), or_dash(&r.asset_number)),
        (
            label(lang, "介质", "Medium"),
            text(&format!(
                "{} {}, {} {}, {} bytes",
                crate::cert::pdf::both(lang, "型号", "model"),
                m.model.as_deref().unwrap_or("-"),
                crate::cert::pdf::both(lang, "序列号", "serial"),
                m.serial.as_deref().unwrap_or("-"),
                m.size_bytes
            )),
        ),
        (label(lang, "操作人", "Operator"), or_dash(&r.operator.name)),
        (label(lang, "签发时间", "Issued"), text(&cert.issued_at)),
    ];
    for warning in &s.warnings {
        table.push((label(lang, "提示", "Warning"), text(warning)));
    }
    rows(&table)
}

fn signature_list(lang: Lang, checked: &Checked) -> String {
    let mut out = format!(
        "<h2>{}</h2><ul>",
        label(lang, "签名（每次查看时重新核验）", "Signatures (verified again on every view)")
    );
    for signature in &checked.signatures {
        let who = signature.statement.as_ref().map(|st| format!(" {}", text(&st.name))).unwrap_or_default();
        let result = match &signature.result {
            Ok(good) => format!(
                "<span class=\"ok\">{}</span> {}, {}",
                label(lang, "有效", "valid"),
                text(&good.principals().join(", ")),
                text(&good.fingerprint)
            ),
            Err(why) => format!(
                "<span class=\"bad\">{}</span> {}",
                label(lang, "无效", "BAD"),
                text(&why.to_string())
            ),
        };
        let _ = write!(out, "<li>{}{who}: {result}</li>", text(&signature.role));
    }
    out + "</ul>"
}

fn downloads(lang: Lang, id: &str, bundle: &Bundle) -> String {
    let names = bundle.files(id).into_iter().map(|(name, ..)| name).chain([format!("{id}.pdf")]);
    let links: String = names
        .map(|name| format!("<li><a href=\"/c/{id}/files/{}\">{}</a></li>", segment(&name), text(&name)))
        .collect();
    format!("<h2>{}</h2><ul>{links}</ul>", label(lang, "下载原始文件", "Download the exact files"))
}

/// `/c/<id>/files/<name>`: one of the files, byte for byte.
pub fn file(site: &mut Site, id: &str, name: &str) -> Result<Response, LedgerError> {
    if !is_id(id) {
        return Ok(not_found(Lang::Both));
    }
    let Some(filed) = site.ledger.filed(id)? else { return Ok(not_found(Lang::Both)) };
    if name == format!("{id}.pdf") {
        return Ok(pdf(site, id, &filed));
    }
    Ok(match filed.bundle.files(id).into_iter().find(|(n, ..)| n == name) {
        Some((_, kind, bytes)) => Response::download(kind, name, bytes),
        None => not_found(Lang::Both),
    })
}

/// The printed certificate, rendered from the filed bytes as the judge finds
/// them (as of when the ledger recorded them), with those bytes attached.
fn pdf(site: &Site, id: &str, filed: &crate::ledger::import::Filed) -> Response {
    let judgement = filed.judge(Some(&site.allowed));
    let options =
        crate::cert::pdf::Options { lang: Lang::Both, font: None, verify_url: site.verify_url.as_deref() };
    match crate::cert::pdf::render(&filed.bundle, &judgement, id, &options) {
        Ok(rendered) => Response::download("application/pdf", &format!("{id}.pdf"), rendered.bytes),
        // A certificate that no longer reads as one cannot be printed; the
        // page says why, never a result.
        Err(why) => {
            let body = format!(
                "<p class=\"bad\">{} — {}</p>",
                label(Lang::Both, "无效，无法打印", "NOT VALID, cannot be printed"),
                text(&why.to_string())
            );
            Response::html(422, html::page(Lang::Both, "PDF", &body))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qr_text_and_pasted_addresses_give_the_id_and_hash() {
        let id = "0f8fad5b-d9cb-469f-a165-70867728950e";
        let sha = "a".repeat(64);
        assert_eq!(
            scanned(&format!("certwipe:{id}:sha256:{sha}")),
            Some((id.to_string(), Some(sha.clone())))
        );
        assert_eq!(
            scanned(&format!("https://office.example/c/{id}?sha256={sha}")),
            Some((id.to_string(), Some(sha.clone())))
        );
        assert_eq!(scanned(&format!("https://office.example/c/{id}")), Some((id.to_string(), None)));
        assert_eq!(scanned("certwipe:../../etc/passwd:sha256:00"), None);
        assert!(!is_id("0F8FAD5B-D9CB-469F-A165-70867728950E") && is_id(id) && !is_id("../x"));
    }
}
