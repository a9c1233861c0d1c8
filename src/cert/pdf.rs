//! The printable certificate: an A4 page, Chinese and English, laid out like the
//! NIST SP 800-88 App. G certificate, with a QR code tying the paper to the signed
//! JSON and the JSON and signature files attached. Fonts are real, embedded and
//! subsetted (Noto Sans CJK by default).

use std::collections::BTreeSet;
use std::path::Path;

use krilla::Document;
use krilla::color::rgb;
use krilla::embed::{AssociationKind, EmbeddedFile, MimeType};
use krilla::geom::{PathBuilder, Point, Rect};
use krilla::page::PageSettings;
use krilla::paint::{Fill, Stroke};
use krilla::text::{Font, TextDirection};
use skrifa::MetadataProvider;
use thiserror::Error;

use super::display::escape;
use super::files::Bundle;
use super::judge::{Context, Judgement as Checked, SignatureCheck, Trust, Verdict};
use super::model::{Certificate, Sanitization};
use super::records::{Classification, Records};
use crate::device::Identity;
use crate::report::{PassContent, Status, total_sectors};
use crate::stream::RandomStream;

crate::named! {
    pub enum Lang: "language" {
        Zh = "zh",
        En = "en",
        /// Chinese and English side by side.
        Both = "both",
    }
}

#[derive(Debug, Error)]
pub enum PdfError {
    #[error(
        "no font with Chinese glyphs found (looked for Noto Sans CJK in {}); install fonts-noto-cjk or give --font FILE[:INDEX]",
        SYSTEM_FONTS.iter().map(|(p, _)| *p).collect::<Vec<_>>().join(", ")
    )]
    NoCjkFont,
    #[error("font {0}: cannot read it as an OpenType/TrueType font")]
    BadFont(String),
    #[error("font {0} has no Chinese glyphs; --lang zh and both need a CJK font such as Noto Sans CJK")]
    FontLacksChinese(String),
    #[error("writing the PDF failed: {0}")]
    Write(String),
    #[error("{0}")]
    Certificate(#[from] super::CertError),
    #[error("{path}: {problems}")]
    NotACertificate { path: String, problems: String },
    #[error("{path}: {source}")]
    Output { path: String, source: std::io::Error },
}

// `cert pdf` writes nothing when it fails: the PDF appears by rename.
impl crate::exit::ExitStatus for PdfError {
    fn exit_status(&self) -> u8 {
        crate::exit::USAGE
    }
}

/// How a certificate is printed.
#[derive(Clone, Copy, Debug)]
pub struct Options<'a> {
    pub lang: Lang,
    /// A font file (`FILE[:INDEX]`) instead of the system's Noto Sans CJK.
    pub font: Option<&'a str>,
    /// The records office's page (`certwipe serve`): when given, the QR code
    /// opens `<verify_url>/c/<id>?sha256=<hex>`; the id and hash stay in the
    /// footer either way.
    pub verify_url: Option<&'a str>,
}

impl Default for Options<'_> {
    fn default() -> Self {
        Options { lang: Lang::Both, font: None, verify_url: None }
    }
}

/// What printing a certificate file gave.
pub struct Written {
    /// Characters the font had no glyph for (printed as code points).
    pub missing_glyphs: Vec<char>,
    /// The judge's verdict, which the page shows (NOT VALID where the result would be).
    pub verdict: Verdict,
}

/// Prints the certificate file `cert`, with its signature files attached, to
/// `output`, as the judge finds it now against `trust`.
pub fn write_file(
    cert: &Path,
    output: &Path,
    options: &Options<'_>,
    trust: Option<Trust<'_>>,
) -> Result<Written, PdfError> {
    let bundle = Bundle::from_files(cert)?;
    let judgement = super::judge::judge(&bundle, &Context::now(trust));
    let name = cert.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let name = name.strip_suffix(".json").unwrap_or(&name);
    let rendered = render(&bundle, &judgement, name, options).map_err(|error| match error {
        PdfError::NotACertificate { problems, .. } => {
            PdfError::NotACertificate { path: cert.display().to_string(), problems }
        }
        other => other,
    })?;
    crate::durable::write_atomically(output, &rendered.bytes, 0o644)
        .map_err(|source| PdfError::Output { path: output.display().to_string(), source })?;
    Ok(Written { missing_glyphs: rendered.missing_glyphs, verdict: judgement.verdict() })
}

/// Noto Sans CJK's collection is about 20 MB; nothing larger is a font to load.
const MAX_FONT_BYTES: u64 = 64 << 20;

/// Fonts looked for when `--font` is not given: (path, face index of Simplified Chinese).
const SYSTEM_FONTS: &[(&str, u32)] = &[
    ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", 2),
    ("/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc", 2),
    ("/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc", 2),
    ("/usr/share/fonts/opentype/noto/NotoSansCJKsc-Regular.otf", 0),
];
const LATIN_FONTS: &[(&str, u32)] = &[("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", 0)];

/// A font, loaded once for drawing (krilla) and measuring (skrifa).
struct Face {
    data: Vec<u8>,
    index: u32,
    font: Font,
}

impl Face {
    fn load(path: &Path, index: u32) -> Result<Face, PdfError> {
        let bad = || PdfError::BadFont(path.display().to_string());
        let data = crate::input::read_regular(path, MAX_FONT_BYTES).map_err(|_| bad())?;
        skrifa::FontRef::from_index(&data, index).map_err(|_| bad())?;
        let font = Font::new(data.clone().into(), index).ok_or_else(bad)?;
        Ok(Face { data, index, font })
    }

    fn has_chinese(&self) -> bool {
        let font = skrifa::FontRef::from_index(&self.data, self.index).expect("checked at load");
        "数据销毁证明".chars().all(|c| font.charmap().map(c).is_some())
    }

    fn has_glyph(&self, c: char) -> bool {
        let font = skrifa::FontRef::from_index(&self.data, self.index).expect("checked at load");
        c.is_whitespace() || font.charmap().map(c).is_some()
    }

    /// Width of `text` at `size` points.
    fn width(&self, text: &str, size: f32) -> f32 {
        let font = skrifa::FontRef::from_index(&self.data, self.index).expect("checked at load");
        let metrics =
            font.glyph_metrics(skrifa::instance::Size::new(size), skrifa::instance::LocationRef::default());
        let charmap = font.charmap();
        text.chars()
            .map(|c| charmap.map(c).and_then(|g| metrics.advance_width(g)).unwrap_or(size * 0.6))
            .sum()
    }
}

/// Finds the font: `--font FILE[:INDEX]`, or a system CJK font, or (English only) a Latin one.
fn find_font(font: Option<&str>, lang: Lang) -> Result<(Face, Option<Face>), PdfError> {
    let needs_chinese = lang != Lang::En;
    let regular = match font {
        Some(spec) => {
            let (path, index) = match spec.rsplit_once(':') {
                Some((path, index)) if index.parse::<u32>().is_ok() => (path, index.parse().unwrap_or(0)),
                _ => (spec, 0),
            };
            let face = Face::load(Path::new(path), index)?;
            if needs_chinese && !face.has_chinese() {
                return Err(PdfError::FontLacksChinese(path.to_string()));
            }
            return Ok((face, None));
        }
        None => {
            let candidates: Vec<&(&str, u32)> =
                SYSTEM_FONTS.iter().chain(if needs_chinese { &[][..] } else { LATIN_FONTS }).collect();
            candidates
                .into_iter()
                .find_map(|(path, index)| Face::load(Path::new(path), *index).ok())
                .ok_or(PdfError::NoCjkFont)?
        }
    };
    let bold = SYSTEM_FONTS
        .iter()
        .filter_map(|(path, index)| Face::load(Path::new(&path.replace("Regular", "Bold")), *index).ok())
        .next();
    Ok((regular, bold))
}

/// What the page shows, in drawing order; laid out first, then drawn page by page.
enum Op {
    Text { x: f32, y: f32, size: f32, bold: bool, gray: bool, text: String },
    Fill { rect: (f32, f32, f32, f32), shade: u8 },
    Line { from: (f32, f32), to: (f32, f32) },
}

const PAGE: (f32, f32) = (595.0, 842.0);
const MARGIN: f32 = 42.0;
const LABEL_WIDTH: f32 = 150.0;
const QR_SIZE: f32 = 96.0;

struct Layout<'a> {
    lang: Lang,
    face: &'a Face,
    pages: Vec<Vec<Op>>,
    y: f32,
    /// Characters the font has no glyph for, printed as code points instead.
    missing: BTreeSet<char>,
}

impl Layout<'_> {
    fn ops(&mut self) -> &mut Vec<Op> {
        self.pages.last_mut().expect("there is always a page")
    }

    fn need(&mut self, height: f32) {
        if self.y + height > PAGE.1 - MARGIN - 20.0 {
            self.pages.push(Vec::new());
            self.y = MARGIN;
        }
    }

    fn label(&self, zh: &str, en: &str) -> String {
        match self.lang {
            Lang::Zh => zh.to_string(),
            Lang::En => en.to_string(),
            Lang::Both => format!("{zh} {en}"),
        }
    }

    /// `text` with every character the font lacks written as its code point, so
    /// that nothing is silently printed as an empty box.
    fn visible(&mut self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        for c in text.chars() {
            if self.face.has_glyph(c) {
                out.push(c);
            } else {
                self.missing.insert(c);
                out.push_str(&format!("<U+{:04X}>", c as u32));
            }
        }
        out
    }

    fn text(&mut self, x: f32, size: f32, bold: bool, text: &str) {
        let y = self.y;
        let text = self.visible(text);
        self.ops().push(Op::Text { x, y, size, bold, gray: false, text });
    }

    /// A header line that must stay left of the QR code: cut with an ellipsis
    /// when too long (the full value is printed, wrapped, further down).
    fn header(&mut self, size: f32, bold: bool, text: &str) {
        let width = PAGE.0 - 2.0 * MARGIN - QR_SIZE - 12.0;
        let text = self.visible(text);
        let fitted = if self.face.width(&text, size) <= width {
            text
        } else {
            let mut cut = String::new();
            for c in text.chars() {
                if self.face.width(&format!("{cut}{c}…"), size) > width {
                    break;
                }
                cut.push(c);
            }
            cut + "…"
        };
        let y = self.y;
        self.ops().push(Op::Text { x: MARGIN, y, size, bold, gray: false, text: fitted });
    }

    fn section(&mut self, zh: &str, en: &str) {
        self.need(40.0);
        self.y += 10.0;
        let title = self.label(zh, en);
        let y = self.y;
        self.ops().push(Op::Fill { rect: (MARGIN, y, PAGE.0 - 2.0 * MARGIN, 16.0), shade: 225 });
        self.y += 12.0;
        self.text(MARGIN + 4.0, 10.0, true, &title);
        self.y += 10.0;
    }

    /// A label and a value, each wrapped to its column.
    fn row(&mut self, zh: &str, en: &str, value: &str) {
        let label = self.label(zh, en);
        let label = self.visible(&label);
        let value = self.visible(value);
        let labels = wrap(self.face, &label, 8.0, LABEL_WIDTH - 10.0);
        let values = wrap(self.face, &value, 8.5, PAGE.0 - 2.0 * MARGIN - LABEL_WIDTH - 8.0);
        let lines = labels.len().max(values.len());
        self.need(11.0 * lines as f32 + 2.0);
        self.y += 9.0;
        let top = self.y;
        for (i, line) in labels.into_iter().enumerate() {
            let y = top + 11.0 * i as f32;
            self.ops().push(Op::Text { x: MARGIN + 4.0, y, size: 8.0, bold: false, gray: true, text: line });
        }
        for (i, line) in values.into_iter().enumerate() {
            let y = top + 11.0 * i as f32;
            self.ops().push(Op::Text {
                x: MARGIN + LABEL_WIDTH,
                y,
                size: 8.5,
                bold: false,
                gray: false,
                text: line,
            });
        }
        self.y = top + 11.0 * (lines - 1) as f32 + 2.0;
    }
}

/// Greedy wrapping by measured width; CJK text breaks anywhere, Latin at spaces.
fn wrap(face: &Face, text: &str, size: f32, width: f32) -> Vec<String> {
    let mut lines = Vec::new();
    for paragraph in text.split('\n') {
        let mut line = String::new();
        for word in paragraph.split_inclusive(' ') {
            let candidate = format!("{line}{word}");
            if face.width(candidate.trim_end(), size) <= width || line.is_empty() {
                line = candidate;
            } else {
                lines.push(line.trim_end().to_string());
                line = word.to_string();
            }
            // A single word longer than the line (a hash, CJK text) is cut by characters.
            while face.width(line.trim_end(), size) > width {
                let mut cut = String::new();
                for c in line.chars() {
                    if face.width(&format!("{cut}{c}"), size) > width {
                        break;
                    }
                    cut.push(c);
                }
                let rest = line[cut.len()..].to_string();
                lines.push(cut);
                line = rest;
            }
        }
        lines.push(line.trim_end().to_string());
    }
    lines
}

fn status_words(status: Status) -> (&'static str, &'static str) {
    match status {
        Status::Erased => ("已清除", "erased"),
        Status::Incomplete => ("不完整", "incomplete"),
        Status::Failed => ("失败", "failed"),
        Status::Aborted => ("已中止", "aborted"),
    }
}

fn level(lang: Lang, c: Option<Classification>) -> String {
    match (c, lang) {
        (None, _) => "-".into(),
        (Some(c), Lang::Zh) => c.chinese().into(),
        (Some(c), Lang::En) => c.english().into(),
        (Some(c), Lang::Both) => format!("{} {}", c.chinese(), c.english()),
    }
}

pub fn both(lang: Lang, zh: &str, en: &str) -> String {
    match lang {
        Lang::Zh => zh.into(),
        Lang::En => en.into(),
        Lang::Both => format!("{zh} / {en}"),
    }
}

fn or_dash(value: &Option<String>) -> String {
    value.clone().unwrap_or_else(|| "-".into())
}

/// The text a QR code on the page carries: the certificate id and the SHA-256 of
/// the exact certificate file — as the records office's page address when
/// there is one, so that scanning the paper opens the record.
pub fn qr_payload(cert: &Certificate, sha256: &str, verify_url: Option<&str>) -> String {
    match verify_url {
        Some(base) => format!("{}/c/{}?sha256={sha256}", base.trim_end_matches('/'), cert.certificate_id),
        None => format!("certwipe:{}:sha256:{sha256}", cert.certificate_id),
    }
}

/// A rendered certificate, and the characters its font could not show.
pub struct Rendered {
    pub bytes: Vec<u8>,
    pub missing_glyphs: Vec<char>,
}

/// Renders `cert` (as checked by `check_files`) to PDF bytes, attaching
/// `attachments`. Text from the certificate is shown with hidden characters
/// escaped, and characters the font lacks as code points.
pub fn render(
    bundle: &Bundle,
    checked: &Checked,
    name: &str,
    options: &Options<'_>,
) -> Result<Rendered, PdfError> {
    let Some(cert) = &checked.certificate else {
        return Err(PdfError::NotACertificate {
            path: name.to_string(),
            problems: checked.problems.join("; "),
        });
    };
    let lang = options.lang;
    let cert = &super::display::escaped(cert);
    let (face, bold) = find_font(options.font, lang)?;
    let mut layout =
        Layout { lang, face: &face, pages: vec![Vec::new()], y: MARGIN, missing: BTreeSet::new() };
    lay_out(&mut layout, cert, checked);
    let pages = std::mem::take(&mut layout.pages);
    let missing_glyphs = layout.missing.into_iter().collect();

    let mut document = Document::new();
    let total = pages.len();
    for (number, ops) in pages.into_iter().enumerate() {
        let mut page =
            document.start_page_with(PageSettings::from_wh(PAGE.0, PAGE.1).expect("A4 is a valid size"));
        let mut surface = page.surface();
        for op in ops {
            draw(&mut surface, &op, &face, bold.as_ref());
        }
        if number == 0 {
            draw_qr(&mut surface, &qr_payload(cert, &checked.sha256, options.verify_url));
        }
        let footer = format!(
            "{} {}  ·  SHA-256 {}  ·  {}/{}",
            both(lang, "证书编号", "Certificate"),
            cert.certificate_id,
            checked.sha256,
            number + 1,
            total
        );
        let hint = both(
            lang,
            "二维码：证书编号及证书文件SHA-256；签名核验：ssh-keygen -Y verify -n certwipe",
            "QR: certificate id and SHA-256 of the JSON file; signatures: ssh-keygen -Y verify -n certwipe",
        );
        for (line, text) in [(PAGE.1 - 30.0, footer), (PAGE.1 - 22.0, hint)] {
            draw(
                &mut surface,
                &Op::Text { x: MARGIN, y: line, size: 6.0, bold: false, gray: true, text },
                &face,
                None,
            );
        }
        surface.finish();
        page.finish();
    }
    for (name, mime, data) in bundle.files(name) {
        document.embed_file(EmbeddedFile {
            path: name,
            mime_type: MimeType::new(mime.split(';').next().unwrap_or(mime)),
            description: Some("signed certwipe certificate file (exact bytes)".into()),
            association_kind: AssociationKind::Source,
            data: data.into(),
            modification_date: None,
            compress: None,
            location: None,
        });
    }
    let bytes = document.finish().map_err(|e| PdfError::Write(format!("{e:?}")))?;
    Ok(Rendered { bytes, missing_glyphs })
}

fn lay_out(l: &mut Layout<'_>, cert: &Certificate, checked: &Checked) {
    header(l, cert, checked);
    medium_section(l, &cert.medium, &cert.records);
    records_section(l, &cert.records);
    sanitization_section(l, &cert.sanitization);
    signatures(l, checked);
}

/// Title, identifiers and the result, left of the QR code. A certificate the
/// judge rejects shows NOT VALID and why where the result would be: its claim
/// is never printed as a result.
fn header(l: &mut Layout<'_>, cert: &Certificate, checked: &Checked) {
    let lang = l.lang;
    let s = &cert.sanitization;
    let r = &cert.records;
    l.y += 16.0;
    if lang != Lang::En {
        l.text(MARGIN, 17.0, true, "存储介质数据销毁证明");
        l.y += 17.0;
    }
    if lang != Lang::Zh {
        l.text(MARGIN, if lang == Lang::En { 17.0 } else { 12.0 }, true, "Media Sanitization Certificate");
        l.y += 14.0;
    }
    let subtitle = both(lang, "依据 NIST SP 800-88 附录G", "after NIST SP 800-88 App. G");
    l.text(MARGIN, 8.0, false, &subtitle);
    l.y += 13.0;
    l.header(8.0, false, &format!("{}: {}", both(lang, "证书编号", "Certificate ID"), cert.certificate_id));
    l.y += 11.0;
    l.header(8.0, false, &format!("{}: {}", both(lang, "签发时间", "Issued"), cert.issued_at));
    l.y += 11.0;
    l.header(
        8.0,
        false,
        &format!("{}: {}", both(lang, "台帐编号", "Ledger number"), or_dash(&r.asset_number)),
    );
    l.y = l.y.max(MARGIN + QR_SIZE + 24.0);
    if checked.verdict() == Verdict::Invalid {
        let reasons = checked.reasons();
        let headline =
            format!("{} — {}", both(lang, "无效", "NOT VALID"), reasons.first().map_or("", String::as_str));
        l.header(13.0, true, &headline);
        l.y += 4.0;
        for reason in &reasons {
            l.row("无效原因", "Why not valid", reason);
        }
        l.row(
            "证书所称结果",
            "Result it claims",
            &format!(
                "{} ({}) — {}",
                s.status.as_str(),
                both(lang, "不可信", "not to be relied on"),
                s.status_reason
            ),
        );
        return;
    }
    let (zh, en) = status_words(s.status);
    let verdict = format!("{}: {}", both(lang, "结果", "Result"), both(lang, zh, &en.to_uppercase()));
    l.text(MARGIN, 13.0, true, &verdict);
    l.y += 4.0;
    l.row("说明", "Reason", &s.status_reason);
    if checked.verdict() == Verdict::SignerNotChecked {
        l.row(
            "签名人",
            "Signer",
            &both(
                lang,
                "签名完好，但未对照授权签名人名单核验",
                "signature intact, but NOT checked against the allowed signers",
            ),
        );
    }
    // What the verdict rests on (a time the signer chose, a key retired
    // since) is printed with it, so the paper never says more than the screen.
    for note in &checked.notes {
        l.row("注意", "Note", note);
    }
}

fn medium_section(l: &mut Layout<'_>, m: &Identity, r: &Records) {
    l.section("一、介质信息", "1. Medium");
    l.row("台帐编号", "Ledger number", &or_dash(&r.asset_number));
    l.row("制造商", "Manufacturer", &or_dash(&m.vendor));
    l.row("型号", "Model", &or_dash(&m.model));
    l.row("序列号", "Serial number", &or_dash(&m.serial));
    l.row("固件 / WWN", "Firmware / WWN", &format!("{} / {}", or_dash(&m.firmware), or_dash(&m.wwn)));
    l.row(
        "容量",
        "Capacity",
        &format!("{} bytes, sector {}/{}", m.size_bytes, m.logical_sector_size, m.physical_sector_size),
    );
    l.row("介质类型", "Media type", &format!("{}, {} ({})", m.media_type, m.transport, m.resolved_path));
    for (zh, en, value) in super::render::medium_rows(m) {
        l.row(zh, en, &value);
    }
}

fn records_section(l: &mut Layout<'_>, r: &Records) {
    let lang = l.lang;
    l.section("二、台帐记录", "2. Records");
    l.row(
        "单位 / 地点",
        "Organisation / site",
        &format!("{} / {}", or_dash(&r.organisation), or_dash(&r.site)),
    );
    l.row(
        "密级（处理前 / 后）",
        "Classification before / after",
        &format!("{} / {}", level(lang, r.classification_before), level(lang, r.classification_after)),
    );
    l.row("介质来源", "Media source", &or_dash(&r.media_source));
    l.row(
        "数据备份",
        "Data backed up",
        &format!(
            "{}{}",
            r.data_backed_up,
            r.backup_location.as_ref().map(|b| format!(", {b}")).unwrap_or_default()
        ),
    );
    l.row("去向", "Destination", r.destination.map_or("-", |d| d.as_str()));
    let operator = [&r.operator.name, &r.operator.title, &r.operator.id, &r.operator.contact]
        .iter()
        .filter_map(|v| (*v).clone())
        .collect::<Vec<_>>()
        .join(", ");
    l.row("操作人", "Operator", if operator.is_empty() { "-" } else { &operator });
    if let Some(notes) = &r.notes {
        l.row("备注", "Notes", notes);
    }
}

fn sanitization_section(l: &mut Layout<'_>, s: &Sanitization) {
    l.section("三、处理情况", "3. Sanitization");
    l.row("类别", "Category", &format!("{} ({})", s.category.as_str(), s.technique.as_str()));
    l.row("方法", "Method", &format!("{} ({}), {} round(s)", s.method.name, s.method.id, s.method.rounds));
    l.row("依据", "Source", &s.method.source);
    // Compact enough that even Gutmann's 35 passes fit the page; full seeds are in the
    // attached JSON.
    let passes: Vec<String> = s
        .passes
        .iter()
        .map(|p| match &p.content {
            PassContent::Fixed { pattern } => format!("{}: 0x{pattern}", p.index),
            PassContent::Random(RandomStream::ChaCha8 { seed }) => {
                format!("{}: chacha8 {}…", p.index, &String::from(*seed)[..12])
            }
            PassContent::Random(RandomStream::Aes128Ctr { key, .. }) => {
                format!("{}: aes-128-ctr {}…", p.index, &hex::encode(key)[..12])
            }
        })
        .collect();
    if !passes.is_empty() {
        l.row("覆写遍数", "Passes", &passes.join("; "));
        let unwritten: u64 = s.passes.iter().map(|p| total_sectors(&p.unwritten)).sum();
        l.row("未写入扇区", "Unwritten sectors", &unwritten.to_string());
    }
    for (zh, en, value) in s.firmware.iter().flat_map(super::render::firmware_rows) {
        l.row(zh, en, &value);
    }
    let verified =
        s.passes.iter().filter_map(|p| p.verification.as_ref().map(|v| (p.index, v))).map(|(i, v)| {
            format!(
                "pass {i}: {} {}, {:.1}%, {} mismatched, {} unreadable",
                v.kind,
                v.result,
                v.coverage * 100.0,
                total_sectors(&v.mismatches),
                total_sectors(&v.unreadable)
            )
        });
    let verification =
        std::iter::once(format!("verify {}: {}", s.verify_mode, s.verification.result)).chain(verified);
    l.row("校验", "Verification", &verification.collect::<Vec<_>>().join("\n"));
    l.row("时间", "Time", &format!("{} — {}", s.started_at, s.finished_at));
    if let Some(digest) = &s.final_content_digest {
        l.row(
            "最终内容摘要",
            "Final content",
            &format!("SHA-256 {}\nBLAKE3 {}", digest.sha256, digest.blake3),
        );
    }
    for interruption in &s.interruptions {
        l.row(
            "中断与恢复",
            "Interrupted / resumed",
            &format!(
                "{} / {}: {}",
                interruption.checkpoint_at, interruption.resumed_at, interruption.medium_check
            ),
        );
    }
    for warning in &s.warnings {
        l.row("注意", "Warning", warning);
    }
    if !s.errors.is_empty() {
        l.section("四、错误", "4. Errors");
        for entry in &s.errors.entries {
            l.row(
                "",
                &entry.at,
                &match entry.pass {
                    Some(pass) => format!("pass {pass} {}: {}", entry.operation, entry.message),
                    None => format!("{}: {}", entry.operation, entry.message),
                },
            );
        }
        if s.errors.omitted > 0 {
            l.row("", "", &format!("{} more not listed", s.errors.omitted));
        }
    }
}

fn signatures(l: &mut Layout<'_>, checked: &Checked) {
    let lang = l.lang;
    l.section("签字", "Signatures");
    let roles = [
        ("station", "操作人（工作站签名）", "Operator (station)"),
        ("validator", "校验人", "Validator"),
        ("witness", "监销人", "Witness"),
        ("approver", "审批人", "Approver"),
    ];
    for (role, zh, en) in roles {
        let present: Vec<&SignatureCheck> = checked.signatures.iter().filter(|s| s.role == role).collect();
        if present.is_empty() {
            l.need(26.0);
            l.y += 20.0;
            let label = l.label(zh, en);
            l.text(MARGIN + 4.0, 8.0, false, &label);
            let y = l.y + 1.0;
            let line = both(lang, "签名", "Signature");
            let date = both(lang, "日期", "Date");
            l.text(MARGIN + LABEL_WIDTH, 7.0, false, &line);
            l.ops().push(Op::Line {
                from: (MARGIN + LABEL_WIDTH + 70.0, y),
                to: (MARGIN + LABEL_WIDTH + 240.0, y),
            });
            l.text(MARGIN + LABEL_WIDTH + 250.0, 7.0, false, &date);
            l.ops().push(Op::Line { from: (MARGIN + LABEL_WIDTH + 290.0, y), to: (PAGE.0 - MARGIN, y) });
            l.y += 6.0;
        }
        for signature in present {
            let who = signature
                .statement
                .as_ref()
                .map(|st| {
                    let title = st.title.as_deref().map(|t| format!(" ({})", escape(t))).unwrap_or_default();
                    format!("{}{title}, ", escape(&st.name))
                })
                .unwrap_or_default();
            let when =
                signature.statement.as_ref().map(|st| format!(", {}", st.signed_at)).unwrap_or_default();
            let value = match &signature.result {
                Ok(good) if good.signer.is_none() => format!(
                    "{who}{} {}{when}",
                    both(lang, "签名完好，签名人未核验", "signature intact, signer NOT checked"),
                    good.fingerprint
                ),
                Ok(good) => format!(
                    "{who}{} {} ({}){when}",
                    both(lang, "数字签名有效", "digital signature valid"),
                    escape(&good.principals().join(", ")),
                    good.fingerprint
                ),
                Err(why) => format!(
                    "{who}{}: {}",
                    both(lang, "数字签名无效", "digital signature INVALID"),
                    escape(&why.to_string())
                ),
            };
            l.row(zh, en, &value);
        }
    }
}

fn draw(surface: &mut krilla::surface::Surface<'_>, op: &Op, face: &Face, bold: Option<&Face>) {
    match op {
        Op::Text { x, y, size, bold: is_bold, gray, text } => {
            if text.is_empty() {
                return;
            }
            let shade = if *gray { 90 } else { 0 };
            surface.set_fill(Some(Fill {
                paint: rgb::Color::new(shade, shade, shade).into(),
                ..Fill::default()
            }));
            let font = match (is_bold, bold) {
                (true, Some(bold)) => bold.font.clone(),
                _ => face.font.clone(),
            };
            surface.draw_text(Point::from_xy(*x, *y), font, *size, text, false, TextDirection::Auto);
        }
        Op::Fill { rect: (x, y, w, h), shade } => {
            surface.set_fill(Some(Fill {
                paint: rgb::Color::new(*shade, *shade, *shade).into(),
                ..Fill::default()
            }));
            fill_rect(surface, *x, *y, *w, *h);
        }
        Op::Line { from, to } => {
            let mut path = PathBuilder::new();
            path.move_to(from.0, from.1);
            path.line_to(to.0, to.1);
            stroke(surface, path);
        }
    }
}

fn stroke(surface: &mut krilla::surface::Surface<'_>, path: PathBuilder) {
    surface.set_fill(None);
    surface.set_stroke(Some(Stroke { width: 0.5, ..Stroke::default() }));
    if let Some(path) = path.finish() {
        surface.draw_path(&path);
    }
    surface.set_stroke(None);
}

fn fill_rect(surface: &mut krilla::surface::Surface<'_>, x: f32, y: f32, w: f32, h: f32) {
    let mut path = PathBuilder::new();
    if let Some(rect) = Rect::from_xywh(x, y, w, h) {
        path.push_rect(rect);
    }
    if let Some(path) = path.finish() {
        surface.draw_path(&path);
    }
}

/// The QR code, top right of the first page, with its quiet zone.
fn draw_qr(surface: &mut krilla::surface::Surface<'_>, payload: &str) {
    let Ok(code) = qrcode::QrCode::with_error_correction_level(payload.as_bytes(), qrcode::EcLevel::M) else {
        return;
    };
    let modules = code.width();
    let size = QR_SIZE;
    let cell = size / modules as f32;
    let (left, top) = (PAGE.0 - MARGIN - size, MARGIN);
    let mut frame = PathBuilder::new();
    if let Some(rect) = Rect::from_xywh(left - 5.0, top - 5.0, size + 10.0, size + 10.0) {
        frame.push_rect(rect);
    }
    stroke(surface, frame);
    surface.set_fill(Some(Fill { paint: rgb::Color::new(0, 0, 0).into(), ..Fill::default() }));
    let colors = code.to_colors();
    for (i, color) in colors.iter().enumerate() {
        if *color == qrcode::Color::Dark {
            let (x, y) = ((i % modules) as f32, (i / modules) as f32);
            fill_rect(surface, left + x * cell, top + y * cell, cell + 0.05, cell + 0.05);
        }
    }
}
