//! The live view of `flexshm watch` (ratatui over crossterm).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table};
use ratatui::{DefaultTerminal, Frame};

use crate::cmd::watch::{first_record, follow, POLL};
use crate::model::{Record, WriterState};
use crate::rate::RateMeter;
use crate::render::{clean, value_text};
use crate::source::Segment;
use crate::Failure;

/// Shortest time between two screen updates (and, in single-slot mode, two reads).
const FRAME: Duration = Duration::from_millis(40);
/// How often the writer's liveness and the segment's name are checked.
const SLOW: Duration = Duration::from_millis(500);
/// Span of the rate shown.
const RATE_SPAN: Duration = Duration::from_secs(2);

struct View {
    record: Option<Record>,
    writer: WriterState,
    /// The name was removed and not created again.
    removed: bool,
    head: u32,
    commits: u64,
    rate: RateMeter,
    read: u64,
    last_record: Option<Instant>,
}

pub fn run(seg: Segment, name: &str, from_oldest: bool) -> Result<(), Failure> {
    // SIGTERM and SIGHUP (the terminal closed) end the view like q does, so that the
    // terminal is restored; Ctrl-C arrives as a key in raw mode.
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGHUP] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .map_err(|e| Failure::new(format!("cannot handle signal {sig}: {e}")))?;
    }
    let mut terminal = ratatui::try_init()
        .map_err(|e| Failure::new(format!("cannot set up the terminal: {e}")))?;
    let result = watch(&mut terminal, seg, name, from_oldest, &stop);
    let _ = terminal.show_cursor();
    drop(terminal);
    ratatui::restore();
    result
}

/// Handles the keys that arrive within `timeout`; true when the user quits.
fn quit_requested(timeout: Duration) -> Result<bool, Failure> {
    let err = |e: std::io::Error| Failure::new(format!("reading the terminal failed: {e}"));
    let mut wait = timeout;
    while event::poll(wait).map_err(err)? {
        wait = Duration::ZERO;
        if let Event::Key(k) = event::read().map_err(err)? {
            let ctrl_c =
                k.code == KeyCode::Char('c') && k.modifiers.contains(KeyModifiers::CONTROL);
            let quit = matches!(
                k.code,
                KeyCode::Char('q') | KeyCode::Char('Q') | KeyCode::Esc
            );
            if k.kind == KeyEventKind::Press && (quit || ctrl_c) {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

fn watch(
    terminal: &mut DefaultTerminal,
    mut seg: Segment,
    name: &str,
    from_oldest: bool,
    stop: &AtomicBool,
) -> Result<(), Failure> {
    let start = Instant::now();
    let record = first_record(&mut seg, from_oldest)?;
    let mut view = View {
        last_record: record.as_ref().map(|_| start),
        read: record.is_some() as u64,
        record,
        writer: seg.writer(),
        removed: false,
        head: seg.head(),
        commits: 0,
        rate: RateMeter::new(RATE_SPAN),
    };
    view.rate.observe(start, 0);
    let mut next_read = start;
    let mut next_slow = start + SLOW;
    let mut next_draw = start;
    let mut fresh = false;
    loop {
        if stop.load(Ordering::Relaxed) || quit_requested(Duration::ZERO)? {
            return Ok(());
        }
        let now = Instant::now();
        if seg.mode().is_fifo() {
            // Every record, in order; the screen shows the newest read.
            let wait = next_draw.saturating_duration_since(now).min(POLL);
            if seg.read_next(wait)?.is_some() {
                view.read += 1;
                view.last_record = Some(Instant::now());
                fresh = true;
            }
        } else if now >= next_read {
            if seg.read_next(POLL)?.is_some() {
                view.read += 1;
                view.last_record = Some(Instant::now());
                fresh = true;
                next_read = Instant::now() + FRAME;
            }
        } else if quit_requested(next_read - now)? {
            return Ok(());
        }
        let now = Instant::now();
        let head = seg.head();
        view.commits += seg.commits_between(view.head, head) as u64;
        view.head = head;
        if now >= next_slow {
            view.writer = seg.writer();
            if follow(&mut seg, name)? {
                view.head = seg.head();
                view.record = first_record(&mut seg, true)?;
                view.removed = false;
            } else {
                view.removed = seg.is_replaced();
            }
            next_slow = now + SLOW;
        }
        if now >= next_draw {
            if fresh {
                view.record = seg.record();
                fresh = false;
            }
            view.rate.observe(now, view.commits);
            terminal
                .draw(|f| draw(f, &seg, &view))
                .map_err(|e| Failure::new(format!("drawing the terminal failed: {e}")))?;
            next_draw = now + FRAME;
        }
    }
}

fn draw(f: &mut Frame, seg: &Segment, v: &View) {
    let [top, body, help] = Layout::vertical([
        Constraint::Length(4),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(f.area());

    let writer_style = match v.writer {
        WriterState::Alive { .. } => Style::new().fg(Color::Green),
        WriterState::Dead { .. } => Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
        WriterState::None => Style::new().fg(Color::Yellow),
    };
    let rate = match v.rate.rate() {
        Some(r) => format!("{r:.1} Hz"),
        None => "… Hz".to_string(),
    };
    let mut line1 = vec![
        Span::raw(format!("mode {}   writer ", seg.mode())),
        Span::styled(v.writer.to_string(), writer_style),
        Span::raw(format!("   commit {}   rate {rate}", v.head)),
    ];
    if v.removed {
        line1.push(Span::styled(
            "   segment removed",
            Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
        ));
    }
    let age = match v.last_record {
        Some(t) => format!("{:.1} s ago", t.elapsed().as_secs_f64()),
        None => "none yet".to_string(),
    };
    let mut line2 = format!("records read {}   last record {age}", v.read);
    if seg.mode().is_fifo() {
        line2 += &format!("   lost {}", seg.lost_total());
    }
    let title = format!(" flexshm watch {} ", clean(seg.name()));
    f.render_widget(
        Paragraph::new(vec![Line::from(line1), Line::from(line2)])
            .block(Block::bordered().title(title)),
        top,
    );

    let rows = seg.fields().iter().enumerate().map(|(i, fi)| {
        let sample = v.record.as_ref().and_then(|r| r.fields.get(i));
        let (status, value, style) = match sample {
            None => ("-".to_string(), "-".to_string(), Style::new()),
            Some(s) => {
                let style = if !s.status.written {
                    Style::new().fg(Color::DarkGray)
                } else if s.status.truncated {
                    Style::new().fg(Color::Yellow)
                } else {
                    Style::new()
                };
                let style = if s.status.modified {
                    style.add_modifier(Modifier::BOLD)
                } else {
                    style
                };
                (s.status.to_string(), value_text(s), style)
            }
        };
        Row::new(vec![
            Cell::from(clean(&fi.name).into_owned()),
            Cell::from(fi.kind.to_string()),
            Cell::from(status),
            Cell::from(value),
        ])
        .style(style)
    });
    let name_w = seg
        .fields()
        .iter()
        .map(|f| f.name.len())
        .max()
        .unwrap_or(5)
        .max(5) as u16;
    let type_w = seg
        .fields()
        .iter()
        .map(|f| f.kind.to_string().len())
        .max()
        .unwrap_or(4)
        .max(4) as u16;
    let table = Table::new(
        rows,
        [
            Constraint::Length(name_w),
            Constraint::Length(type_w),
            Constraint::Length(17),
            Constraint::Min(10),
        ],
    )
    .header(
        Row::new(["FIELD", "TYPE", "STATUS", "VALUE"])
            .style(Style::new().add_modifier(Modifier::BOLD)),
    )
    .block(Block::bordered().title(match &v.record {
        Some(r) => format!(" record: commit {} ", r.commit),
        None => " no record yet ".to_string(),
    }));
    f.render_widget(table, body);
    f.render_widget(Paragraph::new(" q: quit"), help);
}
