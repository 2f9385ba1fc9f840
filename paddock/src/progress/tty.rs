//! The live view on a terminal: one block redrawn in place (an `indicatif` bar whose message
//! is the block [`Model::render`] gives), at most ten times a second and only when something
//! changed. Start at [`View::start`].
//!
//! The watches feed the [`Model`] in a task; a thread of its own draws, so a terminal that
//! stops reading (Ctrl-S) holds up only that thread, never the task (it skips frames). Log
//! lines (tracing writes to stderr, usually the same terminal) go through [`LogWriter`],
//! which clears the block while a line is written and redraws it under (indicatif's
//! `suspend`). While the block is shown
//! the cursor is hidden and Ctrl-C echoes no `^C` into it; both come back when it ends, also
//! when the view is dropped unfinished.

use std::io::Write as _;
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::Duration;

use futures::{StreamExt, stream::BoxStream};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle, TermLike};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Event, Pod, Service};
use k8s_openapi::api::networking::v1::Ingress;
use kube::{Api, Client};
use tokio::sync::mpsc;

use super::events;
use super::model::{Model, Stop, ViewConfig};

/// Redraws at most this often.
const REDRAW: Duration = Duration::from_millis(100);

/// The bar of the view being shown, for [`LogWriter`].
static SHOWN: Mutex<Option<ProgressBar>> = Mutex::new(None);

fn shown() -> Option<ProgressBar> {
    SHOWN.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

fn set_shown(bar: Option<ProgressBar>) {
    *SHOWN.lock().unwrap_or_else(|e| e.into_inner()) = bar;
}

/// tracing's writer (see `main.rs`): stderr, with the live view cleared while a line is
/// written and redrawn after it.
pub(crate) struct LogWriter;

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.write_all(buf)?;
        Ok(buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        // tracing's formatter writes each event whole, so a line is never split around a redraw.
        // stderr redirected elsewhere (`2>log`) cannot disturb the block: no need to clear it.
        match shown().filter(|_| stderr_is_terminal()) {
            Some(bar) => bar.suspend(|| std::io::stderr().write_all(buf)),
            None => std::io::stderr().write_all(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

fn stderr_is_terminal() -> bool {
    static TERMINAL: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *TERMINAL.get_or_init(|| std::io::IsTerminal::is_terminal(&std::io::stderr()))
}

/// The terminal's (rows, columns): stdout's, else `$LINES`/`$COLUMNS`, else 24×80.
fn size() -> (u16, u16) {
    console::Term::stdout().size_checked().unwrap_or_else(|| {
        let var = |name: &str, default: u16| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.parse().ok())
                .filter(|n| *n > 0)
                .unwrap_or(default)
        };
        (var("LINES", 24), var("COLUMNS", 80))
    })
}

/// Standard output driven with ANSI sequences, a terminal or not (`--progress=tty` draws on
/// a pipe too; indicatif's own stdout target draws nothing there).
#[derive(Debug)]
struct Stdout;

impl Stdout {
    fn put(&self, s: &str) -> std::io::Result<()> {
        std::io::stdout().lock().write_all(s.as_bytes())
    }
}

impl TermLike for Stdout {
    fn width(&self) -> u16 {
        size().1
    }

    fn height(&self) -> u16 {
        size().0
    }

    fn move_cursor_up(&self, n: usize) -> std::io::Result<()> {
        if n == 0 {
            return Ok(());
        }
        self.put(&format!("\x1b[{n}A"))
    }

    fn move_cursor_down(&self, n: usize) -> std::io::Result<()> {
        if n == 0 {
            return Ok(());
        }
        self.put(&format!("\x1b[{n}B"))
    }

    fn move_cursor_right(&self, n: usize) -> std::io::Result<()> {
        if n == 0 {
            return Ok(());
        }
        self.put(&format!("\x1b[{n}C"))
    }

    fn move_cursor_left(&self, n: usize) -> std::io::Result<()> {
        if n == 0 {
            return Ok(());
        }
        self.put(&format!("\x1b[{n}D"))
    }

    fn write_line(&self, s: &str) -> std::io::Result<()> {
        let mut out = std::io::stdout().lock();
        out.write_all(s.as_bytes())?;
        out.write_all(b"\n")
    }

    fn write_str(&self, s: &str) -> std::io::Result<()> {
        self.put(s)
    }

    fn clear_line(&self) -> std::io::Result<()> {
        self.put("\r\x1b[2K")
    }

    fn flush(&self) -> std::io::Result<()> {
        std::io::stdout().flush()
    }
}

const HIDE_CURSOR: &str = "\x1b[?25l";
const SHOW_CURSOR: &str = "\x1b[?25h";

/// The terminal's settings before [`quiet_control_echo`], to put back.
static SAVED_TERMIOS: Mutex<Option<nix::sys::termios::Termios>> = Mutex::new(None);

/// Turns off the terminal's echo of control characters (`ECHOCTL`) while the view is shown:
/// the `^C` a Ctrl-C echoes would land under the block and shift every later redraw by a
/// line. Nothing else about the terminal changes; [`restore_terminal`] puts it back.
fn quiet_control_echo() {
    use nix::sys::termios::{LocalFlags, SetArg, tcgetattr, tcsetattr};
    let stdout = std::io::stdout();
    let Ok(saved) = tcgetattr(&stdout) else {
        return; // not a terminal
    };
    let mut quiet = saved.clone();
    quiet.local_flags.remove(LocalFlags::ECHOCTL);
    if tcsetattr(&stdout, SetArg::TCSANOW, &quiet).is_ok() {
        *SAVED_TERMIOS.lock().unwrap_or_else(|e| e.into_inner()) = Some(saved);
    }
}

/// Shows the cursor and puts back what [`quiet_control_echo`] changed (once; later calls do
/// nothing but show the cursor again).
fn restore_terminal() {
    let _ = Stdout.put(SHOW_CURSOR);
    let _ = Stdout.flush();
    let saved = SAVED_TERMIOS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    if let Some(saved) = saved {
        let _ = nix::sys::termios::tcsetattr(
            std::io::stdout(),
            nix::sys::termios::SetArg::TCSANOW,
            &saved,
        );
    }
}

/// What the drawing thread is asked to do.
enum Draw {
    Frame(String),
    /// Draw this last frame, leave it on the screen, show the cursor, end.
    Finish(String),
}

/// The drawing thread: owns the bar, draws the frames it receives.
fn draw(frames: Receiver<Draw>) {
    let style =
        ProgressStyle::with_template("{msg}").unwrap_or_else(|_| ProgressStyle::default_spinner());
    // Twice the view's own rate: indicatif's limiter then never drops one of its frames.
    let target = ProgressDrawTarget::term_like_with_hz(Box::new(Stdout), 20);
    let bar = ProgressBar::with_draw_target(None, target).with_style(style);
    quiet_control_echo();
    let _ = Stdout.put(HIDE_CURSOR);
    set_shown(Some(bar.clone()));
    loop {
        match frames.recv() {
            Ok(Draw::Frame(frame)) => bar.set_message(frame),
            Ok(Draw::Finish(frame)) => {
                bar.finish_with_message(frame);
                break;
            }
            // The view went away unfinished: leave what is drawn.
            Err(_) => {
                bar.abandon();
                break;
            }
        }
    }
    set_shown(None);
    restore_terminal();
}

/// What `paddock up` tells the view.
enum Control {
    /// The node stops its pods; the count comes from here.
    StoppingPods(agent::StopProgress),
    /// The pods are gone: stop watching, the control plane stops.
    StoppingControlPlane,
    /// Everything stopped: draw the last frame and end.
    Finish,
}

/// One watched change (boxed: the objects' sizes differ by kilobytes).
enum Update {
    Pod(Box<Pod>, bool),
    Deployment(Box<Deployment>, bool),
    ReplicaSet(Box<ReplicaSet>, bool),
    StatefulSet(Box<StatefulSet>, bool),
    DaemonSet(Box<DaemonSet>, bool),
    Job(Box<Job>, bool),
    CronJob(Box<CronJob>, bool),
    Service(Box<Service>, bool),
    Ingress(Box<Ingress>, bool),
    Event(Box<Event>),
}

impl Update {
    fn apply(self, model: &mut Model) {
        match self {
            Update::Pod(o, gone) => model.pod(&o, gone),
            Update::Deployment(o, gone) => model.deployment(&o, gone),
            Update::ReplicaSet(o, gone) => model.replica_set(&o, gone),
            Update::StatefulSet(o, gone) => model.stateful_set(&o, gone),
            Update::DaemonSet(o, gone) => model.daemon_set(&o, gone),
            Update::Job(o, gone) => model.job(&o, gone),
            Update::CronJob(o, gone) => model.cron_job(&o, gone),
            Update::Service(o, gone) => model.service(&o, gone),
            Update::Ingress(o, gone) => model.ingress(&o, gone),
            Update::Event(o) => model.event(&o),
        }
    }
}

/// Every watch the view needs, as one stream.
fn updates(client: Client) -> BoxStream<'static, Update> {
    fn watch<K>(client: &Client, f: fn(Box<K>, bool) -> Update) -> BoxStream<'static, Update>
    where
        K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
        K::DynamicType: Default,
    {
        events(Api::<K>::all(client.clone()))
            .filter_map(move |e| std::future::ready(e.map(|(o, gone)| f(Box::new(o), gone))))
            .boxed()
    }
    futures::stream::select_all([
        watch::<Pod>(&client, Update::Pod),
        watch::<Deployment>(&client, Update::Deployment),
        watch::<ReplicaSet>(&client, Update::ReplicaSet),
        watch::<StatefulSet>(&client, Update::StatefulSet),
        watch::<DaemonSet>(&client, Update::DaemonSet),
        watch::<Job>(&client, Update::Job),
        watch::<CronJob>(&client, Update::CronJob),
        watch::<Service>(&client, Update::Service),
        watch::<Ingress>(&client, Update::Ingress),
        watch::<Event>(&client, |e, _| Update::Event(e)),
    ])
    .boxed()
}

/// The live view, running.
pub(crate) struct View {
    control: mpsc::Sender<Control>,
    task: Option<tokio::task::JoinHandle<()>>,
    drawer: Option<std::thread::JoinHandle<()>>,
}

impl View {
    /// Starts watching through `client` and drawing on stdout.
    pub(crate) fn start(client: Client, config: ViewConfig) -> std::io::Result<View> {
        // One frame in flight: a slow terminal makes the view skip frames, not queue them.
        let (frames, rx) = sync_channel(1);
        let drawer = std::thread::Builder::new()
            .name("paddock-view".into())
            .spawn(move || draw(rx))?;
        let (control, commands) = mpsc::channel(4);
        let task = tokio::spawn(drive(client, Model::new(config), commands, frames));
        Ok(View {
            control,
            task: Some(task),
            drawer: Some(drawer),
        })
    }

    pub(crate) async fn stopping_pods(&self, pods: agent::StopProgress) {
        let _ = self.control.send(Control::StoppingPods(pods)).await;
    }

    pub(crate) async fn stopping_control_plane(&self) {
        let _ = self.control.send(Control::StoppingControlPlane).await;
    }

    /// Draws the last frame ("stopped") and waits until it is on the screen.
    pub(crate) async fn finish(mut self) {
        let _ = self.control.send(Control::Finish).await;
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        if let Some(drawer) = self.drawer.take() {
            let _ = tokio::task::spawn_blocking(move || drawer.join()).await;
        }
    }
}

impl Drop for View {
    fn drop(&mut self) {
        // Unfinished (an error on the way out): the drawing thread ends when the task's
        // sender goes; the cursor must come back even if it never gets there.
        if let Some(task) = self.task.take() {
            task.abort();
        }
        if self.drawer.is_some() {
            restore_terminal();
        }
    }
}

/// Feeds the model from the watches and `paddock up`'s stop stages; sends a frame at most
/// every [`REDRAW`] when something changed.
async fn drive(
    client: Client,
    mut model: Model,
    mut control: mpsc::Receiver<Control>,
    frames: SyncSender<Draw>,
) {
    let mut updates = updates(client);
    let mut tick = tokio::time::interval(REDRAW);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut stopping: Option<(agent::StopProgress, tokio::time::Instant)> = None;
    // A frame the drawing thread had no room for is sent again at the next tick.
    let mut pending = false;
    loop {
        tokio::select! {
            command = control.recv() => {
                match command {
                    Some(Control::StoppingPods(pods)) => {
                        model.set_stop(Stop::Pods { left: pods.pods_left(), elapsed_secs: 0 });
                        stopping = Some((pods, tokio::time::Instant::now()));
                    }
                    Some(Control::StoppingControlPlane) => {
                        stopping = None;
                        model.set_stop(Stop::ControlPlane);
                        // Close the watches before the server drains its connections.
                        updates = futures::stream::pending().boxed();
                    }
                    Some(Control::Finish) | None => break,
                }
                // Each stop stage is drawn when it starts, however short it is.
                let frame = frame(&mut model);
                let frames = frames.clone();
                let _ = tokio::task::spawn_blocking(move || frames.send(Draw::Frame(frame))).await;
                pending = false;
            },
            Some(update) = updates.next() => update.apply(&mut model),
            _ = tick.tick() => {
                if let Some((pods, since)) = &stopping {
                    model.set_stop(Stop::Pods {
                        left: pods.pods_left(),
                        elapsed_secs: since.elapsed().as_secs(),
                    });
                }
                if model.take_dirty() || pending {
                    pending = match frames.try_send(Draw::Frame(frame(&mut model))) {
                        Ok(()) => false,
                        Err(TrySendError::Full(_)) => true,
                        Err(TrySendError::Disconnected(_)) => return,
                    };
                }
            }
        }
    }
    model.set_stop(Stop::Stopped);
    let frame = frame(&mut model);
    // The drawing thread takes it as soon as it has drawn the frame before.
    let _ = tokio::task::spawn_blocking(move || frames.send(Draw::Finish(frame))).await;
}

/// The model drawn for the terminal's current size.
fn frame(model: &mut Model) -> String {
    model.take_dirty();
    let (rows, columns) = size();
    model
        .render(usize::from(columns), usize::from(rows))
        .join("\n")
}
