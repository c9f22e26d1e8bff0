//! Slack incoming webhooks as data: Block Kit message values whose serde form is the
//! webhook payload, size limits enforced by truncation, the gate's standard message
//! layout, the webhook request, and what an answer means (platform reference §8).

mod webhook;

pub use webhook::{
    build_webhook_request, classify_response, classify_transport_error, SlackOutcome,
};

use super::truncate_chars_with_ellipsis;
use crate::json::tagged::internally_tagged;
use serde::{Deserialize, Serialize};

/// Block Kit limits the gate keeps (Slack answers 400 `invalid_blocks` past them).
pub mod limits {
    /// Blocks per message.
    pub const BLOCKS: usize = 50;
    /// Characters in a section's text.
    pub const SECTION_TEXT: usize = 3_000;
    /// Characters in a header's plain text.
    pub const HEADER_TEXT: usize = 150;
    /// Fields per section.
    pub const FIELDS: usize = 10;
    /// Characters per section field.
    pub const FIELD_TEXT: usize = 2_000;
    /// Elements per context block.
    pub const CONTEXT_ELEMENTS: usize = 10;
    /// Characters per context element.
    pub const CONTEXT_TEXT: usize = 3_000;
    /// Characters in the fallback `text`, and in all block texts together.
    pub const TOTAL_TEXT: usize = 40_000;
    /// Characters in a button's plain text (Slack's button reference, as quoted by the
    /// `slack-blocks` crate).
    pub const BUTTON_TEXT: usize = 75;
    /// Characters in an `action_id` (same source).
    pub const ACTION_ID: usize = 255;
    /// Characters in a button's `value`. Unsourced: from memory of Slack's button
    /// reference, not found in a stored source (notes/issue20-research.md, Part 3).
    pub const BUTTON_VALUE: usize = 2_000;
    /// Elements in an `actions` block. Unsourced, as `BUTTON_VALUE`.
    pub const ACTION_ELEMENTS: usize = 25;
}

internally_tagged! {
    tag = "type";
    /// A Block Kit text object.
    #[derive(Clone, Debug, PartialEq, Eq)]
    #[serde(rename_all = "snake_case")]
    pub enum Text {
        /// Shown literally; `emoji` turns `:shortcodes:` into emoji.
        PlainText {
            /// The text.
            text: String,
            /// Render `:emoji:` codes.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            emoji: Option<bool>,
        },
        /// Slack's markdown; escape user text with [`escape_mrkdwn`].
        Mrkdwn {
            /// The text.
            text: String,
        },
    }
}

impl Text {
    /// A mrkdwn text object.
    pub fn mrkdwn(text: impl Into<String>) -> Self {
        Text::Mrkdwn { text: text.into() }
    }

    fn text_mut(&mut self) -> &mut String {
        match self {
            Text::PlainText { text, .. } | Text::Mrkdwn { text } => text,
        }
    }
}

internally_tagged! {
    tag = "type";
    /// The Block Kit blocks the gate uses.
    #[derive(Clone, Debug, PartialEq, Eq)]
    #[serde(rename_all = "snake_case")]
    pub enum Block {
        /// A large bold title (plain text only).
        Header {
            /// The title.
            text: Text,
        },
        /// A paragraph and/or a two-column grid of fields.
        Section {
            /// The paragraph.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            text: Option<Text>,
            /// The fields.
            #[serde(default, skip_serializing_if = "Vec::is_empty")]
            fields: Vec<Text>,
        },
        /// Small grey text.
        Context {
            /// The elements.
            elements: Vec<Text>,
        },
        /// A horizontal rule.
        Divider,
        /// Interactive elements: the gate's buttons (`slack_actions::buttons`).
        Actions {
            /// Names the block in a click's payload.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            block_id: Option<String>,
            /// The buttons.
            elements: Vec<Button>,
        },
    }
}

/// A Block Kit button element (`"type": "button"`). Limits (Slack's button reference,
/// quoted by the `slack-blocks` crate): text plain_text of at most 75 characters,
/// `action_id` at most 255.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "button")]
pub struct Button {
    /// The label (plain text).
    pub text: Text,
    /// What the click's payload names.
    pub action_id: String,
    /// Sent back with the click.
    pub value: String,
    /// `primary` (green) or `danger` (red); default grey.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub style: Option<ButtonStyle>,
    /// A dialog shown before the click is sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirm: Option<Confirm>,
}

/// A button's colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ButtonStyle {
    Primary,
    Danger,
}

/// A confirmation dialog object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirm {
    /// plain_text title.
    pub title: Text,
    /// The question.
    pub text: Text,
    /// plain_text label of the go-ahead button.
    pub confirm: Text,
    /// plain_text label of the cancel button.
    pub deny: Text,
    /// The go-ahead button's colour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub style: Option<ButtonStyle>,
}

/// One webhook message: the notification/fallback `text` and the blocks. Its serde form
/// is exactly the webhook payload; [`SlackMessage::to_payload`] fits it to the limits.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlackMessage {
    /// Fallback shown in notifications and by clients that cannot render blocks.
    pub text: String,
    /// The blocks, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocks: Vec<Block>,
}

impl SlackMessage {
    /// A message with fallback `text` and no blocks yet.
    pub fn new(text: impl Into<String>) -> Self {
        SlackMessage {
            text: text.into(),
            blocks: Vec::new(),
        }
    }

    /// Adds a header (plain text, emoji codes rendered).
    pub fn header(mut self, text: impl Into<String>) -> Self {
        self.blocks.push(Block::Header {
            text: Text::PlainText {
                text: text.into(),
                emoji: Some(true),
            },
        });
        self
    }

    /// Adds a section with mrkdwn `text`.
    pub fn section(mut self, mrkdwn: impl Into<String>) -> Self {
        self.blocks.push(Block::Section {
            text: Some(Text::mrkdwn(mrkdwn)),
            fields: Vec::new(),
        });
        self
    }

    /// Adds a section of mrkdwn fields.
    pub fn fields(mut self, fields: Vec<String>) -> Self {
        self.blocks.push(Block::Section {
            text: None,
            fields: fields.into_iter().map(Text::mrkdwn).collect(),
        });
        self
    }

    /// Adds a context block of mrkdwn elements.
    pub fn context(mut self, elements: Vec<String>) -> Self {
        self.blocks.push(Block::Context {
            elements: elements.into_iter().map(Text::mrkdwn).collect(),
        });
        self
    }

    /// Adds a block as it is (e.g. `slack_actions::buttons`).
    pub fn block(mut self, block: Block) -> Self {
        self.blocks.push(block);
        self
    }

    /// Adds a divider.
    pub fn divider(mut self) -> Self {
        self.blocks.push(Block::Divider);
        self
    }

    /// This message cut to the Block Kit limits in [`limits`]: long texts end in `…`;
    /// surplus fields and elements, and the blocks past the 50th or past the point where
    /// all block texts together reach [`limits::TOTAL_TEXT`], are replaced by a note
    /// saying how many were left out; empty texts and empty blocks are dropped. Never
    /// fails: a message that is too big is shortened, not refused. (A cut can split a
    /// mrkdwn link or code span; the text stays valid JSON and valid Block Kit.)
    pub fn fitted(&self) -> SlackMessage {
        // Keep room for the closing note so it survives an exhausted budget.
        const NOTE_RESERVE: usize = 64;
        let mut budget = limits::TOTAL_TEXT - NOTE_RESERVE;
        let mut blocks: Vec<Block> = Vec::new();
        let mut left_out = 0;
        for (i, block) in self.blocks.iter().enumerate() {
            let remaining = self.blocks.len() - i;
            let out_of_blocks = blocks.len() == limits::BLOCKS - 1 && remaining > 1;
            if out_of_blocks || budget == 0 {
                left_out = remaining;
                break;
            }
            if let Some(b) = fit_block(block.clone(), &mut budget) {
                blocks.push(b);
            }
        }
        if left_out > 0 {
            let mut reserve = NOTE_RESERVE;
            let note = Block::Context {
                elements: vec![Text::mrkdwn(format!("_… {left_out} more blocks left out_"))],
            };
            blocks.extend(fit_block(note, &mut reserve));
        }
        let mut text = truncate_chars_with_ellipsis(&self.text, limits::TOTAL_TEXT);
        if text.trim().is_empty() {
            // Slack refuses a message with neither text nor blocks; say something.
            text = "(no text)".into();
        }
        SlackMessage { text, blocks }
    }

    /// The webhook body: [`SlackMessage::fitted`] as JSON.
    ///
    /// # Errors
    /// [`SlackError::Encode`] only if serde_json fails on plain strings (it does not).
    pub fn to_payload(&self) -> Result<String, SlackError> {
        serde_json::to_string(&self.fitted()).map_err(|e| SlackError::Encode(e.to_string()))
    }
}

/// Cuts `text` to `max` chars and the shared budget; false when nothing is left.
fn fit_text(text: &mut Text, max: usize, budget: &mut usize) -> bool {
    let s = text.text_mut();
    let cut = truncate_chars_with_ellipsis(s, max.min(*budget));
    *budget -= cut.chars().count();
    *s = cut;
    !s.trim().is_empty()
}

/// Fits a list of texts: at most `max_items` (the last replaced by a "more" note when
/// cut), each at most `max_chars`, empties dropped.
fn fit_texts(
    items: Vec<Text>,
    max_items: usize,
    max_chars: usize,
    budget: &mut usize,
) -> Vec<Text> {
    let mut items = items;
    if items.len() > max_items {
        let left_out = items.len() - (max_items - 1);
        items.truncate(max_items - 1);
        items.push(Text::mrkdwn(format!("_… {left_out} more left out_")));
    }
    items
        .into_iter()
        .filter_map(|mut t| fit_text(&mut t, max_chars, budget).then_some(t))
        .collect()
}

fn fit_block(block: Block, budget: &mut usize) -> Option<Block> {
    match block {
        Block::Header { mut text } => {
            // A header is plain text only; mrkdwn there is an invalid_blocks error.
            if let Text::Mrkdwn { text: t } = text {
                text = Text::PlainText {
                    text: t,
                    emoji: Some(true),
                };
            }
            fit_text(&mut text, limits::HEADER_TEXT, budget).then_some(Block::Header { text })
        }
        Block::Section { text, fields } => {
            let text =
                text.and_then(|mut t| fit_text(&mut t, limits::SECTION_TEXT, budget).then_some(t));
            let fields = fit_texts(fields, limits::FIELDS, limits::FIELD_TEXT, budget);
            (text.is_some() || !fields.is_empty()).then_some(Block::Section { text, fields })
        }
        Block::Context { elements } => {
            let elements = fit_texts(
                elements,
                limits::CONTEXT_ELEMENTS,
                limits::CONTEXT_TEXT,
                budget,
            );
            (!elements.is_empty()).then_some(Block::Context { elements })
        }
        Block::Divider => Some(Block::Divider),
        // The gate's own buttons: short fixed labels, within the limits as made.
        Block::Actions { block_id, elements } => {
            (!elements.is_empty()).then_some(Block::Actions { block_id, elements })
        }
    }
}

/// Escapes `&`, `<` and `>` so user text cannot form links or mentions in mrkdwn.
pub fn escape_mrkdwn(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `s` as inline code: escaped, backticks (which would end the span) replaced by `'`.
fn code(s: &str) -> String {
    format!("`{}`", escape_mrkdwn(&s.replace('`', "'")))
}

/// The gate's standard message: header, a fields section (script, environment,
/// versions, git sha), the body with the numbers, and a context line with the status
/// page link and the `wrangler tail` command.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateMessage {
    /// Emoji shortcode for the header, e.g. `:rotating_light:`.
    pub emoji: String,
    /// What happened, e.g. `Rolled back mauntic-gateway`.
    pub title: String,
    /// Worker script name.
    pub script: String,
    /// Environment name, e.g. `production`.
    pub environment: String,
    /// The version being rolled out.
    pub new_version: String,
    /// The stable version, when there is one.
    pub stable_version: Option<String>,
    /// The git sha CI gave.
    pub git_sha: Option<String>,
    /// mrkdwn prose (the caller escapes any user text in it with [`escape_mrkdwn`]).
    pub body: String,
    /// Label/value lines rendered as `• *label:* value` under the body (escaped here).
    pub facts: Vec<(String, String)>,
    /// Link to the gate's status page.
    pub status_url: Option<String>,
    /// Marks the message as a dry run.
    pub dry_run: bool,
}

impl GateMessage {
    /// The title with the dry-run mark and emoji, as header and fallback start.
    fn headline(&self) -> String {
        let mark = if self.dry_run { "[dry run] " } else { "" };
        format!("{} {mark}{}", self.emoji, self.title)
            .trim()
            .to_string()
    }

    /// The `wrangler tail` command that opens this Worker. `script` is the Worker's full
    /// name as the Cloudflare API knows it (with wrangler environments already
    /// `<name>-<env>`), so no `--env` follows: `wrangler tail <name> --env <env>` tails
    /// `<name>-<env>` (workers-sdk packages/wrangler/src/utils/getLegacyScriptName.ts), which
    /// for a full name would be `<name>-<env>-<env>`, a Worker that does not exist.
    pub fn tail_command(&self) -> String {
        format!("wrangler tail {}", self.script)
    }

    /// Lays the message out as Block Kit.
    pub fn to_message(&self) -> SlackMessage {
        let headline = self.headline();
        let fallback = format!("{headline}: {} ({})", self.script, self.environment);
        let mut fields = vec![
            format!("*Script*\n{}", code(&self.script)),
            format!("*Environment*\n{}", code(&self.environment)),
            format!("*New version*\n{}", code(&self.new_version)),
        ];
        if let Some(stable) = &self.stable_version {
            fields.push(format!("*Stable version*\n{}", code(stable)));
        }
        if let Some(sha) = &self.git_sha {
            fields.push(format!("*Git sha*\n{}", code(sha)));
        }
        let mut body = self.body.trim().to_string();
        for (label, value) in &self.facts {
            if !body.is_empty() {
                body.push('\n');
            }
            body.push_str(&format!(
                "• *{}:* {}",
                escape_mrkdwn(label),
                escape_mrkdwn(value)
            ));
        }
        let mut context = Vec::new();
        match self.status_url.as_deref() {
            Some(url) if is_linkable(url) => context.push(format!("<{url}|Status page>")),
            Some(url) => context.push(format!("Status page: {}", escape_mrkdwn(url))),
            None => {}
        }
        context.push(format!("Tail: {}", code(&self.tail_command())));
        let mut message = SlackMessage::new(fallback).header(headline).fields(fields);
        if !body.is_empty() {
            message = message.section(body);
        }
        message.context(vec![context.join(" · ")])
    }
}

/// A URL that can sit inside `<url|label>` unescaped.
fn is_linkable(url: &str) -> bool {
    (url.starts_with("https://") || url.starts_with("http://"))
        && !url
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "<>|&".contains(c))
}

/// Why a webhook request could not be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SlackError {
    /// The configured webhook URL is not an `http(s)://` URL (the URL is not shown: it is
    /// the credential).
    #[error("the Slack webhook URL is not a valid http(s) URL")]
    InvalidWebhookUrl,
    /// JSON encoding failed.
    #[error("could not encode the Slack message: {0}")]
    Encode(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mrkdwn_escaping_defuses_links_and_mentions() {
        assert_eq!(
            escape_mrkdwn("<!channel> & <http://x|y>"),
            "&lt;!channel&gt; &amp; &lt;http://x|y&gt;"
        );
        assert_eq!(code("a`b<c"), "`a'b&lt;c`");
    }

    #[test]
    fn empty_message_still_has_fallback_text() {
        let fitted = SlackMessage::new("  ").section("").fitted();
        assert_eq!(fitted.text, "(no text)");
        assert!(fitted.blocks.is_empty());
    }
}
