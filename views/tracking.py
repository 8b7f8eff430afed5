"""/tracking: the variable-tracking task in miniature, a transformer and a feedback transformer
trained on it, run live on the reader's program and scored on held-out programs."""

import streamlit as st

from lib import export, tracking
from lib.charts import tracking as charts
from lib.config import PARAMS_BY_NAME
from lib.ui import share, state
from lib.ui import tracking as ui
from lib.ui.state import bound, bound_in_range
from lib.ui.text import escape_markdown

cfg = state.current().config

st.title("Tracking a variable: a transformer and a feedback transformer, trained")
st.markdown(
    f"""
A transformer reads the states of earlier tokens only at the depth it is at, so a chain of
updates that each need the result of the last runs out of layers; a feedback transformer feeds
the *top* of every earlier token into the *bottom* of the present one. Fan et al. (2020) put
this to a test they call variable tracking — programs of assignments, increments, decrements,
conditionals and prints, where the model must say every printed value — and report a
Transformer at 33.7% and a Feedback Transformer at 99.1% with three variables.

Here is that task in miniature, with models trained on this kind of CPU: one variable `x` with
values 1–{tracking.VALUES} that wrap around, and conditionals (`if x == 2 : x ++ ;`), so every
value hangs on the whole chain before it. Neither kind of model has position embeddings; both
bias their attention towards recent tokens in the same way (ALiBi).
"""
)

try:
    models = ui.shipped()
except (OSError, ValueError, RuntimeError) as error:  # missing or damaged weight files
    st.error(
        f"The trained models could not be loaded ({type(error).__name__}: {error}). "
        "Rebuild them in `{tracking.WEIGHTS_DIR}` with `python -m bench.train_tracking` and the "
        "model names (`--help` lists them).",
        icon="🚫",
    )
    st.stop()
st.markdown(
    "Trained here and shipped with the app: "
    + ", ".join(f"**{name}** ({shipped.description})" for name, shipped in models.items())
    + "."
)

st.header("1. Run a program through both")
length, seed, another = st.columns([3, 2, 2], vertical_alignment="bottom")
with length:
    bound_in_range(st.slider, "statements", "Statements in the generated program")
with seed:
    bound_in_range(st.number_input, "pseed", "Program seed")
with another:
    st.button("Another program", on_click=ui.new_program, icon=":material/casino:")
bound(
    st.text_area,
    "program",
    "Or write your own (empty: the generated one)",
    max_chars=PARAMS_BY_NAME["program"].max_chars,
    placeholder="x = 3 ; x ++ ; if x == 4 : x = 1 ; print x ;",
    help="Statements end with `;`. Allowed: `x = 1`…`x = 5`, `x ++`, `x --`, `print x`, and "
    "`if x == 3 :` before any of the updates. Values wrap: 5 ++ is 1.",
)
text, refusal = ui.program_of(cfg)
if refusal:
    st.warning(
        f"Your program could not be read: {escape_markdown(refusal)}. Showing the generated one.",
        icon="⚠️",
    )
run = ui.program_run(text)
program = run.program
st.code(text.replace("; ", ";\n"), language=None, wrap_lines=True)

names = list(run.guesses)
score = " · ".join(f"**{name}** {run.right(name)}/{len(program.printed)}" for name in names)
st.markdown(f"Prints answered right on this program: {score}.")
frame = charts.predictions_frame(program, run.guesses)
figure = charts.predictions_chart(frame)
st.altair_chart(figure, width="stretch")
own = bool(cfg.program) and refusal is None
name = export.view_name(
    ui.PAGE,
    *((("program", "own"),) if own else (("pseed", cfg.pseed), ("statements", cfg.statements))),
)
share.chart_downloads(figure.properties(width=charts.EXPORT_WIDTH), f"{name}-predictions")
st.caption(
    f"Each column is a `print x`, in program order; the top row is the value the program prints "
    f"(computed by running it), the rows below what each model says at that print. "
    f"“{ui.SKIP}” is a shortcut, not a model: it applies every unconditional update and ignores "
    "every `if`, which no sequential reading would do."
)

st.header("2. Held-out programs: in the training lengths, and longer")
table = ui.held_out_table()
st.dataframe(
    table.style.format("{:.1%}"),
    column_config={"_index": st.column_config.TextColumn("model")},
)
best = table.drop(index=ui.SKIP).idxmax()
longest = list(tracking.TEST_SETS)[-1]
st.markdown(
    f"Per-print accuracy on {tracking.TEST_PROGRAMS} fixed programs per set (seeds unseen in "
    f"training), computed from the shipped weights when the page loads. On {longest}, the best "
    f"is **{best[longest]}** at {table.loc[best[longest], longest]:.1%}; the shortcut gets "
    f"{table.loc[ui.SKIP, longest]:.1%}."
)
curve = ui.length_curve()
length_figure = charts.length_chart(curve)
st.altair_chart(length_figure, width="stretch")
share.chart_downloads(
    length_figure.properties(width=charts.EXPORT_WIDTH), "tracking-accuracy-by-length"
)
with st.expander("How each model was trained"):
    st.dataframe(
        [
            {
                "model": model_name,
                "layers": shipped.record["sizes"]["layers"],
                "steps": shipped.record["steps"],
                "batch": shipped.record["batch"],
                "training seconds": shipped.record["train_seconds"],
                "threads": shipped.record["threads"],
                "seed": shipped.record["seed"],
            }
            for model_name, shipped in models.items()
        ],
        hide_index=True,
    )
    st.caption("Reproduce with `python -m bench.train_tracking NAME` (same seed, same weights).")

st.header("3. What the feedback model reads at each print")
reads = charts.reads_frame(program, run.reads)
reads_figure = charts.reads_chart(reads, program.tokens)
st.altair_chart(reads_figure, width="stretch")
share.chart_downloads(reads_figure.properties(width=charts.EXPORT_WIDTH), f"{name}-reads")
feedback = next(m for m in models.values() if m.record["kind"] == "feedback")
window = feedback.model.window
st.caption(
    f"At the `x` of each print, the feedback model's first layer attends over the memories of "
    f"the last {window} tokens (heads averaged). Each memory mixes *every* layer of its token, "
    "top included: this is the top of the past feeding the bottom of the present. Nothing in "
    "the design says which memories to read: where the weight sits is what training made of it."
)

st.header("What this does and does not show")
kinds = {model_name: shipped.record["kind"] for model_name, shipped in models.items()}
found = tracking.verdict(table.to_dict(orient="index"), kinds)
first = list(tracking.TEST_SETS)[0]
fb, tr = table.loc[found.feedback], table.loc[found.best_transformer]
comparison = (
    "On every test set the feedback model answers more prints right than every transformer of "
    "the same width."
    if found.wins_everywhere
    else "The feedback model does not beat every transformer on every test set here (see the "
    "table above)."
)
gap = (
    "; a larger transformer, or one trained longer, may narrow the gap measured here"
    if found.wins_everywhere
    else ""
)
st.markdown(
    f"""
- **Measured on this run:** {found.feedback} gets {fb[first]:.1%} of prints right on programs
  like its training ones ({first}) and {fb[longest]:.1%} on {longest}; the best transformer
  there, {found.best_transformer}, gets {tr[first]:.1%} and {tr[longest]:.1%}. {comparison}
  From the training lengths to {longest}, the feedback model's accuracy changes by
  {-100 * found.feedback_drop:+.1f} points, {found.best_transformer}'s by
  {-100 * found.transformer_drop:+.1f}.
- **Not shown:** the paper's full setting. A prototype on this CPU found that neither model
  learned the paper's three variables with values 1–10 within ten minutes of training, so this
  page uses one variable with values 1–{tracking.VALUES}. The models are tiny and trained
  briefly{gap}. The paper's claim is about what depth limits; this is one small instance of
  it, not a replication.
"""
)

data = {
    "program": program.text,
    "printed": list(program.printed),
    "predictions": {key: list(value) for key, value in run.guesses.items()},
    "held_out_accuracy": table,
    "accuracy_by_length": curve,
    "feedback_reads": reads,
}
share.data_downloads(ui.PAGE, cfg, name, data, frame)
