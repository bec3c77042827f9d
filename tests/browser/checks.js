// The checks a real browser runs on a page holding img2img's Mask blur slider and the soft inpainting
// accordion (tests/browser/page.html: gradio-shaped markup; tests/browser/gradio_page.py: gradio 3.41
// itself). They drive the page as a user would and write the verdict, as JSON, into a hidden `pre`
// element (id RESULT_ID), which tests/browser/check_chromium.py reads back.
//
// softInpaintBrowserCheck.run(options): options.generate, a selector of a button whose handler writes
// what gradio would send for [Mask blur, Soft inpainting] into the element options.probe (as JSON),
// lets the checks confirm that gradio itself took the new values (only the real gradio page has one).

(function(win) {
    'use strict';

    var RESULT_ID = 'soft-inpaint-check';

    function visible(el) {
        return Boolean(el) && win.getComputedStyle(el).display !== 'none' && el.offsetHeight > 0 &&
            el.offsetWidth > 0;
    }

    function later(ms) {
        return new Promise(function(resolve) {
            setTimeout(resolve, ms);
        });
    }

    function report(results) {
        var failed = results.filter(function(r) {
            return !r.ok;
        });
        var ok = failed.length === 0 && win.pageErrors.length === 0 && results.length > 0;
        var out = win.document.getElementById(RESULT_ID);
        if (!out) {
            out = win.document.createElement('pre');
            out.id = RESULT_ID;
            out.hidden = true;
            win.document.body.appendChild(out);
        }
        out.textContent = JSON.stringify({ok: ok, checks: results, errors: win.pageErrors});
        win.document.title = (ok ? 'PASS' : 'FAIL') + ' soft inpainting browser check';
    }

    async function runChecks(app, options, check) {
        var ui = win.softInpaintingUi;
        check('script installed its one global', ui && typeof ui.updateHint === 'function');
        var accordion = app.querySelector('#soft_inpaint_enabled');
        var labelWrap = accordion && accordion.querySelector('.label-wrap');
        var hint = app.querySelector('#soft_inpaint_mask_blur_hint');
        check('the page holds the accordion and the Mask blur slider',
            accordion && labelWrap && app.querySelector('#img2img_mask_blur'));
        check('hint visible with soft inpainting on and Mask blur 4', visible(hint));
        if (hint && labelWrap) {
            var h = hint.getBoundingClientRect();
            var a = accordion.getBoundingClientRect();
            var l = labelWrap.getBoundingClientRect();
            check('hint inside the accordion, under its title bar',
                h.top >= l.bottom - 1 && h.left >= a.left && h.right <= a.right + 1,
                JSON.stringify({hintTop: h.top, titleBottom: l.bottom}));
        }
        check('hint names the current value', hint && hint.textContent.indexOf('Mask blur is 4.') >= 0,
            hint && hint.textContent);

        Object.keys(ui.TITLES).forEach(function(label) {
            if (label === 'Preset') return;  // a generic label: set on our control only
            check('titles has ' + label, typeof win.titles[label] === 'string' && win.titles[label].length > 0);
        });
        // Every labelled control inside the accordion, found by gradio's markup, not by our id table;
        // the inner Help accordion's title is not a control.
        var labels = accordion.querySelectorAll('[data-testid=block-info], [data-testid=checkbox] + span');
        var untitled = Array.prototype.filter.call(labels, function(s) {
            return !s.title;
        }).map(function(s) {
            return s.textContent;
        });
        check('every control has a hover hint (preset, six sliders, timestep checkbox)',
            labels.length === 8 && untitled.length === 0, labels.length + ' labels; without: ' + untitled.join(', '));
        check('the accordion title has a hover hint', labelWrap.querySelector('span').title.length > 0);

        var number = app.querySelector('#img2img_mask_blur input[type=number]');
        var range = app.querySelector('#img2img_mask_blur input[type=range]');
        var seen = [];
        number.addEventListener('input', function(e) {
            seen.push(e.target.value);
        });
        var folded = 0;
        labelWrap.addEventListener('click', function() {
            folded++;
        });
        var button = app.querySelector('#soft_inpaint_mask_blur_hint_button');
        check('button reads "Set mask blur to 32"', button && button.textContent === 'Set mask blur to 32');
        if (button) button.click();
        check('button set the number input to 32', number.value === '32', number.value);
        check('button set the range input to 32', range.value === '32', range.value);
        check('button fired input for gradio', seen.length === 1 && seen[0] === '32', JSON.stringify(seen));
        check('the click did not reach the accordion title', folded === 0);
        check('hint hidden at 32', !visible(hint));

        async function sent() {
            app.querySelector(options.generate).click();
            await later(200);
            var probe = app.querySelector(options.probe);
            try {
                return JSON.parse(probe.value);
            } catch (e) {
                return String(probe && probe.value);
            }
        }
        if (options.generate) {
            var values = await sent();
            check('gradio took Mask blur 32', values[0] === 32 && values[1] === true, JSON.stringify(values));
        }

        number.value = '10';
        number.dispatchEvent(new Event('input', {bubbles: true}));
        await later(50);
        check('hint back when the user types 10', visible(hint), hint.textContent);
        check('hint names the new value', hint.textContent.indexOf('Mask blur is 10.') >= 0);

        var box = app.querySelector('#soft_inpaint_enabled-visible-checkbox');
        check('the accordion title has its checkbox', Boolean(box));
        if (box) box.click();
        await later(50);
        check('hint hidden when the user switches soft inpainting off', !visible(hint));
        if (options.generate) {
            var off = await sent();
            check('gradio took soft inpainting off', off[1] === false, JSON.stringify(off));
        }
        if (box) box.click();
        await later(50);
        check('hint back when the user switches it on again', visible(hint));
    }

    async function run(options) {
        options = options || {};
        var results = [];
        var check = function(name, ok, detail) {
            results.push({name: name, ok: Boolean(ok), detail: detail === undefined ? '' : String(detail)});
        };
        try {
            await runChecks(win.gradioApp(), options, check);
        } catch (e) {
            check('checks ran without an exception', false, e && e.stack || e);
        }
        report(results);
    }

    /** For a page that must only load cleanly: the checks given, then the verdict. */
    function reportOnly(checks) {
        report(checks);
    }

    win.softInpaintBrowserCheck = {run: run, reportOnly: reportOnly};
})(window);
