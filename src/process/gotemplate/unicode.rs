//! Go's `unicode` predicates and simple case mappings, backed by ICU's
//! general-category table.

use icu_properties::CodePointMapData;
use icu_properties::props::GeneralCategory as GC;

fn gc(c: char) -> GC {
    CodePointMapData::<GC>::new().get(c)
}

pub(super) fn is_letter(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_alphabetic();
    }
    matches!(
        gc(c),
        GC::UppercaseLetter
            | GC::LowercaseLetter
            | GC::TitlecaseLetter
            | GC::ModifierLetter
            | GC::OtherLetter
    )
}

pub(super) fn is_digit(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_digit();
    }
    gc(c) == GC::DecimalNumber
}

pub(super) fn is_number(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_digit();
    }
    matches!(
        gc(c),
        GC::DecimalNumber | GC::LetterNumber | GC::OtherNumber
    )
}

pub(super) fn is_upper(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_uppercase();
    }
    gc(c) == GC::UppercaseLetter
}

pub(super) fn is_lower(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_lowercase();
    }
    gc(c) == GC::LowercaseLetter
}

pub(super) fn is_title(c: char) -> bool {
    gc(c) == GC::TitlecaseLetter
}

pub(super) fn is_punct(c: char) -> bool {
    matches!(
        gc(c),
        GC::DashPunctuation
            | GC::OpenPunctuation
            | GC::ClosePunctuation
            | GC::ConnectorPunctuation
            | GC::OtherPunctuation
            | GC::InitialPunctuation
            | GC::FinalPunctuation
    )
}

/// Go's unicode.IsSpace.
pub(super) fn is_space(c: char) -> bool {
    match c {
        '\t' | '\n' | '\u{0B}' | '\u{0C}' | '\r' | ' ' | '\u{85}' | '\u{A0}' => true,
        c if (c as u32) < 0x100 => false,
        c => c.is_whitespace(),
    }
}

/// Go's unicode.IsPrint: letters, marks, numbers, punctuation, symbols and
/// the ASCII space.
pub(super) fn is_print(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_ascii() {
        return c.is_ascii_graphic();
    }
    !matches!(
        gc(c),
        GC::Unassigned
            | GC::SpaceSeparator
            | GC::LineSeparator
            | GC::ParagraphSeparator
            | GC::Control
            | GC::Format
            | GC::PrivateUse
            | GC::Surrogate
    )
}

fn single(mut it: impl Iterator<Item = char>) -> Option<char> {
    let a = it.next()?;
    if it.next().is_some() { None } else { Some(a) }
}

/// unicode.ToUpper (simple mapping).
pub(super) fn to_upper(c: char) -> char {
    if c.is_ascii() {
        return c.to_ascii_uppercase();
    }
    let u = c as u32;
    match u {
        0x1F80..=0x1F87 | 0x1F90..=0x1F97 | 0x1FA0..=0x1FA7 => {
            return char::from_u32(u + 8).unwrap_or(c);
        }
        0x1FB3 => return '\u{1FBC}',
        0x1FC3 => return '\u{1FCC}',
        0x1FF3 => return '\u{1FFC}',
        _ => {}
    }
    single(c.to_uppercase()).unwrap_or(c)
}

/// unicode.ToLower (simple mapping).
pub(super) fn to_lower(c: char) -> char {
    if c.is_ascii() {
        return c.to_ascii_lowercase();
    }
    if c == '\u{130}' {
        return 'i';
    }
    single(c.to_lowercase()).unwrap_or(c)
}

/// unicode.ToTitle (simple mapping).
pub(super) fn to_title(c: char) -> char {
    match c as u32 {
        0x1C4..=0x1C6 => '\u{1C5}',
        0x1C7..=0x1C9 => '\u{1C8}',
        0x1CA..=0x1CC => '\u{1CB}',
        0x1F1..=0x1F3 => '\u{1F2}',
        0x1F88..=0x1F8F | 0x1F98..=0x1F9F | 0x1FA8..=0x1FAF | 0x1FBC | 0x1FCC | 0x1FFC => c,
        _ => to_upper(c),
    }
}
