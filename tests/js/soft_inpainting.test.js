// Tests of javascript/soft_inpainting.js with node's test runner and jsdom:
//   cd tests/js && npm ci && npm test      (or, from the repository root: node --test tests/js/)
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');

let JSDOM;
let VirtualConsole;
try {
    ({JSDOM, VirtualConsole} = require('jsdom'));
} catch (e) {
    throw new Error('jsdom is missing: run `npm ci` in tests/js first (' + e.message + ')');
}

const SOURCE_PATH = path.join(__dirname, '..', '..', 'javascript', 'soft_inpainting.js');
const SOURCE = fs.readFileSync(SOURCE_PATH, 'utf8');
const SHIM = fs.readFileSync(path.join(__dirname, 'webui_shim.js'), 'utf8');
const FIXTURE = fs.readFileSync(path.join(__dirname, 'gradio_fixture.js'), 'utf8');
const ui = require(SOURCE_PATH);

const TIMESTEP_LABEL = 'Noise level conversion (flow models such as SD3 and Flux; DDIM/PLMS/UniPC)';
const LABELS = ['Soft inpainting', 'Schedule bias', 'Preservation strength', 'Transition contrast boost',
    'Mask influence', 'Difference threshold', 'Difference contrast', 'Preset', TIMESTEP_LABEL];

/** A jsdom window whose console output is collected; nothing is loaded into it yet. */
function newWindow() {
    const consoleErrors = [];
    const virtualConsole = new VirtualConsole();
    virtualConsole.on('error', (...args) => consoleErrors.push(args.map(String).join(' ')));
    virtualConsole.on('jsdomError', (e) => consoleErrors.push('jsdomError: ' + (e.stack || e)));
    const dom = new JSDOM('<!DOCTYPE html><html><head></head><body></body></html>',
        {runScripts: 'outside-only', virtualConsole});
    return {window: dom.window, consoleErrors};
}

/** A page as the WebUI serves it: the page API and our script in the head, then gradio renders
 * its markup, which makes the page API run the onUiLoaded callbacks (awaited here). */
async function webuiPage(options) {
    const page = newWindow();
    const win = page.window;
    win.eval(SHIM);
    win.eval(FIXTURE);
    win.eval(SOURCE);
    win.softInpaintFixture.mount(win.document, options);
    await sleep(0);
    assert.equal(win.webuiShim.isUiLoaded(), true);
    return page;
}

/** A mounted fixture for calling the exported functions directly. */
function fixtureDocument(options) {
    const page = newWindow();
    page.window.eval(FIXTURE);
    page.window.softInpaintFixture.mount(page.window.document, options);
    return page.window.document;
}

function hintOf(doc) {
    return doc.getElementById(ui.HINT_ID);
}

function isShown(doc) {
    const hint = hintOf(doc);
    return Boolean(hint) && hint.style.display !== 'none';
}

function typeMaskBlur(win, value) {
    const input = win.document.querySelector('#img2img_mask_blur input[type=number]');
    input.value = String(value);
    input.dispatchEvent(new win.Event('input', {bubbles: true}));
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

test('shouldShowHint: only when enabled and below 16', () => {
    assert.equal(ui.MIN_RECOMMENDED_MASK_BLUR, 16);
    assert.equal(ui.shouldShowHint(true, 4), true);
    assert.equal(ui.shouldShowHint(true, 0), true);
    assert.equal(ui.shouldShowHint(true, 15.9), true);
    assert.equal(ui.shouldShowHint(true, 16), false);
    assert.equal(ui.shouldShowHint(true, 32), false);
    assert.equal(ui.shouldShowHint(false, 4), false);
    assert.equal(ui.shouldShowHint(true, NaN), false);
    assert.equal(ui.shouldShowHint(true, undefined), false);
    assert.equal(ui.shouldShowHint('true', 4), false);
});

test('the hint shows beside the accordion when enabled and mask blur is below 16', () => {
    const doc = fixtureDocument({enabled: true, maskBlur: 4});
    assert.equal(ui.updateHint(doc), true);
    const hint = hintOf(doc);
    assert.ok(hint, 'hint element created');
    assert.equal(hint.style.display, 'flex');
    const accordion = doc.getElementById('soft_inpaint_enabled');
    assert.equal(hint.parentElement, accordion);
    assert.ok(hint.previousElementSibling.classList.contains('label-wrap'), 'right under the title bar');
    assert.match(hint.textContent, /Mask blur is 4\./);
    assert.match(hint.textContent, /high Mask blur/);
    const button = doc.getElementById(ui.HINT_BUTTON_ID);
    assert.equal(button.textContent, 'Set mask blur to 32');
    assert.equal(button.type, 'button');
});

test('the hint is hidden at 16 and above, and when soft inpainting is off', () => {
    for (const maskBlur of [16, 17, 32, 64]) {
        const doc = fixtureDocument({enabled: true, maskBlur});
        assert.equal(ui.updateHint(doc), false, `mask blur ${maskBlur}`);
        assert.equal(isShown(doc), false, `mask blur ${maskBlur}`);
    }
    const off = fixtureDocument({enabled: false, maskBlur: 4});
    assert.equal(ui.updateHint(off), false);
    assert.equal(isShown(off), false);
});

test('the hint follows changes and is never duplicated', () => {
    const doc = fixtureDocument({enabled: true, maskBlur: 4});
    ui.updateHint(doc);
    ui.updateHint(doc);
    assert.equal(doc.querySelectorAll('#' + ui.HINT_ID).length, 1);
    doc.querySelector('#img2img_mask_blur input[type=number]').value = '24';
    assert.equal(ui.updateHint(doc), false);
    assert.equal(isShown(doc), false);
    doc.querySelector('#img2img_mask_blur input[type=number]').value = '8';
    assert.equal(ui.updateHint(doc), true);
    assert.match(hintOf(doc).textContent, /Mask blur is 8\./);
    doc.querySelector('#soft_inpaint_enabled-checkbox input').checked = false;
    assert.equal(ui.updateHint(doc), false);
    assert.equal(isShown(doc), false);
    assert.equal(doc.querySelectorAll('#' + ui.HINT_ID).length, 1);
});

test('the button sets mask blur to 32, fires input events gradio listens to, and hides the hint', () => {
    const doc = fixtureDocument({enabled: true, maskBlur: 4});
    ui.updateHint(doc);
    const number = doc.querySelector('#img2img_mask_blur input[type=number]');
    const range = doc.querySelector('#img2img_mask_blur input[type=range]');
    const seen = [];
    number.addEventListener('input', (e) => seen.push(['number', e.target.value, e.bubbles]));
    range.addEventListener('input', (e) => seen.push(['range', e.target.value, e.bubbles]));
    const bubbled = [];
    doc.querySelector('gradio-app').addEventListener('input', (e) => bubbled.push(e.target));
    let accordionClicks = 0;
    doc.getElementById('soft_inpaint_enabled').addEventListener('click', () => accordionClicks++);

    doc.getElementById(ui.HINT_BUTTON_ID).click();

    assert.equal(number.value, '32');
    assert.equal(range.value, '32');
    assert.deepEqual(seen, [['number', '32', true], ['range', '32', true]]);
    assert.deepEqual(bubbled, [number, range]);
    assert.equal(accordionClicks, 0, 'the click does not reach the accordion');
    assert.equal(ui.readMaskBlur(doc), 32);
    assert.equal(isShown(doc), false);
});

test('setMaskBlur notifies gradio through the page\'s updateInput() when the page has one', () => {
    const page = newWindow();
    const win = page.window;
    win.eval(FIXTURE);
    win.softInpaintFixture.mount(win.document, {enabled: true, maskBlur: 4});
    const notified = [];
    win.updateInput = (target) => {
        notified.push([target.type, target.value]);
        target.dispatchEvent(new win.Event('input', {bubbles: true}));
    };
    assert.equal(ui.setMaskBlur(win.document, 32), true);
    assert.deepEqual(notified, [['number', '32'], ['range', '32']]);
    assert.deepEqual(page.consoleErrors, []);
});

test('readMaskBlur, isEnabled and setMaskBlur read the gradio markup and cope with gaps', () => {
    const doc = fixtureDocument({enabled: true, maskBlur: 12});
    assert.equal(ui.readMaskBlur(doc), 12);
    doc.querySelector('#img2img_mask_blur input[type=number]').value = '';
    assert.equal(ui.readMaskBlur(doc), 12, 'falls back to the range input');
    assert.equal(ui.isEnabled(doc), true);
    doc.querySelector('#soft_inpaint_enabled-checkbox').remove();
    assert.equal(ui.isEnabled(doc), true, 'falls back to the accordion checkbox');
    doc.getElementById('soft_inpaint_enabled-visible-checkbox').checked = false;
    assert.equal(ui.isEnabled(doc), false);

    const noSlider = fixtureDocument({enabled: true, withMaskBlur: false});
    assert.ok(Number.isNaN(ui.readMaskBlur(noSlider)));
    assert.equal(ui.setMaskBlur(noSlider, 32), false);
    assert.equal(ui.updateHint(noSlider), false, 'no slider, no hint');
    assert.equal(isShown(noSlider), false);
});

test('registerTitles adds our label hints without overwriting others or taking generic labels', () => {
    const table = {'Mask blur': 'theirs', 'Mask influence': 'another extension'};
    const added = ui.registerTitles(table);
    for (const label of LABELS.filter((l) => l !== 'Preset' && l !== 'Mask influence')) {
        assert.equal(typeof table[label], 'string', label);
        assert.ok(table[label].length > 20, label);
        assert.ok(added.includes(label), label);
    }
    assert.equal(table['Mask blur'], 'theirs');
    assert.equal(table['Mask influence'], 'another extension');
    assert.equal('Preset' in table, false, 'a generic label stays out of the global table');
    assert.equal(table['Seamless blend'].includes('1.25'), true);
    assert.deepEqual(ui.registerTitles(table), [], 'a second call adds nothing');
    assert.deepEqual(ui.registerTitles(null), []);
    assert.deepEqual(ui.registerTitles(undefined), []);
});

test('applyTitles puts a hover hint on every control of ours', () => {
    const doc = fixtureDocument({enabled: true, maskBlur: 4});
    assert.equal(ui.applyTitles(doc), 9, 'the accordion title, the preset, six sliders, the checkbox');
    const accordionTitle = doc.querySelector('#soft_inpaint_enabled .label-wrap > span');
    assert.equal(accordionTitle.title, ui.TITLES['Soft inpainting']);
    // Every labelled control inside the accordion, found by its markup rather than by our id table.
    const labels = doc.querySelectorAll('#soft_inpaint_enabled [data-testid=block-info], ' +
        '#soft_inpaint_enabled [data-testid=checkbox] + span');
    assert.equal(labels.length, 8);
    for (const label of labels) {
        assert.equal(label.title, ui.TITLES[label.textContent], label.textContent);
        assert.ok(label.title.length > 20, label.textContent);
    }
    for (const [id, label] of Object.entries(ui.TITLE_BY_ELEM_ID)) {
        const span = doc.querySelector('#' + id + ' [data-testid=block-info], #' + id + ' label span');
        assert.equal(span.textContent, label);
        assert.equal(span.title, ui.TITLES[label], id);
    }
    assert.equal(doc.querySelector('#soft_inpaint_timestep_as_noise_level input').title, ui.TITLES[TIMESTEP_LABEL]);
    assert.equal(doc.querySelector('#soft_inpaint_enabled .label-wrap + div .label-wrap span').title, '',
        'the inner Help accordion is not ours to label');
    const number = doc.querySelector('#soft_inpaint_composite_difference_threshold input[type=number]');
    assert.equal(number.title, ui.TITLES['Difference threshold']);
    const mine = doc.querySelector('#soft_inpaint_mask_blend_power [data-testid=block-info]');
    mine.title = 'set by someone else';
    ui.applyTitles(doc);
    assert.equal(mine.title, 'set by someone else', 'an existing title is kept');
    assert.equal(doc.querySelector('#img2img_mask_blur [data-testid=block-info]').title, '', 'not ours');
});

/** Add a copy of the img2img accordion as txt2img's: every id prefixed, the txt2img title. */
function addTxt2imgAccordion(doc) {
    const copy = doc.getElementById('soft_inpaint_enabled').cloneNode(true);
    for (const element of [copy, ...copy.querySelectorAll('[id]')]) element.id = ui.TXT2IMG_PREFIX + element.id;
    copy.querySelector('.label-wrap > span').textContent = ui.TXT2IMG_LABEL;
    doc.body.appendChild(copy);
    return copy;
}

test('the txt2img accordion gets the hover hints under its own ids, and no mask blur hint', () => {
    const doc = fixtureDocument({enabled: true, maskBlur: 4});
    const txt2img = addTxt2imgAccordion(doc);
    assert.equal(ui.applyTitles(doc), 18, 'both accordions: title, preset, six sliders, checkbox');
    assert.equal(txt2img.querySelector('.label-wrap > span').title, ui.TITLES[ui.TXT2IMG_LABEL]);
    assert.ok(ui.TITLES[ui.TXT2IMG_LABEL].includes('ADetailer'));
    const slider = doc.querySelector('#txt2img_soft_inpaint_mask_blend_scale [data-testid=block-info]');
    assert.equal(slider.title, ui.TITLES['Preservation strength']);
    doc.getElementById('soft_inpaint_enabled').remove();
    assert.equal(ui.updateHint(doc), false, 'txt2img has no Mask blur of its own: no hint');
    assert.equal(doc.getElementById(ui.HINT_ID), null);
});

test('nothing throws on an empty page or without a page', () => {
    const {window} = newWindow();
    const doc = window.document;
    for (const app of [doc, null, undefined, {}, {querySelector: () => {
        throw new Error('broken');
    }}]) {
        assert.doesNotThrow(() => ui.updateHint(app));
        assert.doesNotThrow(() => ui.applyTitles(app));
        assert.doesNotThrow(() => ui.setMaskBlur(app, 32));
        assert.doesNotThrow(() => ui.readMaskBlur(app));
        assert.doesNotThrow(() => ui.isEnabled(app));
        assert.equal(ui.updateHint(app), false);
        assert.equal(ui.setMaskBlur(app, 32), false);
        assert.equal(ui.isEnabled(app), false);
    }
    assert.equal(ui.applyTitles(doc), 0);
    assert.equal(doc.body.innerHTML, '', 'nothing added to an empty page');
});

test('loaded as the WebUI loads it: one global, titles registered, hint follows the page', async() => {
    const page = newWindow();
    const win = page.window;
    win.eval(SHIM);
    win.eval(FIXTURE);
    const before = new Set(Object.keys(win));
    win.eval(SOURCE);
    const added = Object.keys(win).filter((k) => !before.has(k));
    assert.deepEqual(added, ['softInpaintingUi'], 'only one global name');
    assert.equal(win.titles['Difference threshold'], ui.TITLES['Difference threshold']);
    assert.equal(win.webuiShim.counts().loaded, 1);

    win.softInpaintFixture.mount(win.document, {enabled: true, maskBlur: 4});
    await sleep(0);
    const doc = win.document;
    assert.equal(isShown(doc), true);
    assert.equal(doc.querySelector('#soft_inpaint_preset [data-testid=block-info]').title, ui.TITLES.Preset);

    typeMaskBlur(win, 20);
    assert.equal(isShown(doc), false, 'typing a high value hides it');
    typeMaskBlur(win, 6);
    assert.equal(isShown(doc), true);
    assert.match(hintOf(doc).textContent, /Mask blur is 6\./);

    // Turning the accordion off as inputAccordion.js does: set the hidden checkbox, fire input on it.
    const hidden = doc.querySelector('#soft_inpaint_enabled-checkbox input');
    hidden.checked = false;
    win.updateInput(hidden);
    assert.equal(isShown(doc), false);
    hidden.checked = true;
    win.updateInput(hidden);
    assert.equal(isShown(doc), true);

    // Unticking the accordion's visible checkbox, as a user does (the page passes it on to gradio's).
    const visible = doc.getElementById('soft_inpaint_enabled-visible-checkbox');
    visible.checked = false;
    visible.dispatchEvent(new win.Event('input', {bubbles: true}));
    assert.equal(hidden.checked, false);
    assert.equal(isShown(doc), false);
    visible.checked = true;
    visible.dispatchEvent(new win.Event('input', {bubbles: true}));
    assert.equal(isShown(doc), true);

    // What gradio's slider would receive.
    const received = [];
    doc.querySelector('#img2img_mask_blur input[type=number]')
        .addEventListener('input', (e) => received.push(Number(e.target.value)));
    doc.getElementById(ui.HINT_BUTTON_ID).click();
    assert.deepEqual(received, [32]);
    assert.equal(isShown(doc), false);

    await sleep(80);
    assert.deepEqual(Array.from(win.webuiShim.errors), []);
    assert.deepEqual(page.consoleErrors, []);
    win.webuiShim.stop();
});

test('a paste that changes mask blur without events is caught by the after-update callback', async() => {
    const page = await webuiPage({enabled: true, maskBlur: 32});
    const win = page.window;
    const doc = win.document;
    assert.equal(isShown(doc), false);
    // gradio sets values as properties (no event); some DOM change follows a paste.
    doc.querySelector('#img2img_mask_blur input[type=number]').value = '4';
    doc.querySelector('#img2img_mask_blur input[type=range]').value = '4';
    doc.getElementById('txt2img_prompt').appendChild(doc.createElement('span'));
    await sleep(80);
    assert.equal(isShown(doc), true);
    win.webuiShim.stop();
    assert.deepEqual(page.consoleErrors, []);
});

test('showing the hint settles: no endless DOM updates', async() => {
    const page = await webuiPage({enabled: true, maskBlur: 4});
    const win = page.window;
    let records = 0;
    const watcher = new win.MutationObserver((list) => {
        records += list.length;
    });
    await sleep(100);
    watcher.observe(win.document.body, {childList: true, subtree: true, attributes: true, characterData: true});
    await sleep(150);
    watcher.disconnect();
    win.webuiShim.stop();
    assert.equal(isShown(win.document), true);
    assert.equal(records, 0, 'the page is quiet once the hint is shown');
});

test('titles registered even when the WebUI replaces its titles table after our script ran', async() => {
    const page = newWindow();
    const win = page.window;
    win.eval(SHIM);
    win.eval(FIXTURE);
    win.eval(SOURCE);
    win.titles = {'Sampling steps': 'theirs'};
    win.softInpaintFixture.mount(win.document, {enabled: true, maskBlur: 4});
    await sleep(0);
    win.webuiShim.stop();
    assert.equal(win.titles['Schedule bias'], ui.TITLES['Schedule bias']);
    assert.equal(win.titles['Sampling steps'], 'theirs');
});

test('no console error on an empty page, with or without the WebUI page API', async() => {
    const withApi = newWindow();
    withApi.window.eval(SHIM);
    assert.doesNotThrow(() => withApi.window.eval(SOURCE));
    // A page that does load (it has the prompt) but holds none of our controls.
    withApi.window.document.body.innerHTML = '<gradio-app><div id="txt2img_prompt"></div></gradio-app>';
    await sleep(0);
    assert.equal(withApi.window.webuiShim.isUiLoaded(), true);

    const bare = newWindow();
    assert.doesNotThrow(() => bare.window.eval(SOURCE));
    const input = bare.window.document.createElement('input');
    bare.window.document.body.appendChild(input);
    input.dispatchEvent(new bare.window.Event('input', {bubbles: true}));
    assert.equal(typeof bare.window.softInpaintingUi.updateHint, 'function');

    await sleep(60);
    withApi.window.webuiShim.stop();
    assert.deepEqual(Array.from(withApi.window.webuiShim.errors), []);
    assert.deepEqual(withApi.consoleErrors, []);
    assert.deepEqual(bare.consoleErrors, []);
    assert.equal(bare.window.document.getElementById(ui.HINT_ID), null);
});
