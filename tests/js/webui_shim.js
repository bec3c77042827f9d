// A small stand-in for the page API that the WebUI's script.js and hints.js give extension scripts
// (WebUI 1.7 - 1.10): gradioApp(), onUiLoaded / onUiUpdate / onAfterUiUpdate (driven by a
// MutationObserver, as there), the global `titles` table and updateInput(). Like the WebUI's
// inputAccordion.js it also gives every `.input-accordion` a visible checkbox in its title bar that
// drives the hidden gradio checkbox. Callback errors are reported with console.error, as the WebUI
// does, and also collected in webuiShim.errors.
//
// A plain browser script, used by tests/browser/page.html and evaluated inside jsdom by the node tests.

(function(win) {
    'use strict';

    var loaded = [];
    var updates = [];
    var afterUpdates = [];
    var afterTimer = null;
    var errors = [];

    function run(queue, arg) {
        queue.forEach(function(callback) {
            try {
                callback(arg);
            } catch (e) {
                errors.push(String(e && e.stack || e));
                win.console.error('error running callback', e);
            }
        });
    }

    win.titles = win.titles || {'Mask blur': 'Blur radius of the mask, in pixels.'};

    win.gradioApp = function() {
        var apps = win.document.getElementsByTagName('gradio-app');
        var app = apps.length ? apps[0] : win.document;
        return app.shadowRoot ? app.shadowRoot : app;
    };
    win.onUiLoaded = function(callback) {
        loaded.push(callback);
    };
    win.onUiUpdate = function(callback) {
        updates.push(callback);
    };
    win.onAfterUiUpdate = function(callback) {
        afterUpdates.push(callback);
    };
    win.updateInput = function(target) {
        target.dispatchEvent(new win.Event('input', {bubbles: true}));
    };

    /** The visible checkbox of an InputAccordion (made here unless the page has it already), kept in
     * step with the hidden gradio checkbox `#<id>-checkbox input`, which is the actual input. */
    function linkInputAccordion(accordion) {
        var app = win.gradioApp();
        var hidden = app.querySelector('#' + accordion.id + '-checkbox input');
        var title = accordion.querySelector('.label-wrap > span');
        if (!hidden || !title) return;
        var visible = app.querySelector('#' + accordion.id + '-visible-checkbox');
        if (!visible) {
            visible = win.document.createElement('input');
            visible.type = 'checkbox';
            visible.id = accordion.id + '-visible-checkbox';
            // gradio's checkbox class too, so that its theme styles the box as it does the hidden one.
            visible.className = (hidden.className + ' input-accordion-checkbox').trim();
            visible.style.marginRight = '0.5em';  // as the WebUI's style.css spaces it
            visible.checked = hidden.checked;
            title.insertBefore(visible, title.firstChild);
        }
        visible.addEventListener('click', function(event) {
            event.stopPropagation();  // ticking the box does not fold the accordion
        });
        visible.addEventListener('input', function() {
            hidden.checked = visible.checked;
            win.updateInput(hidden);
        });
    }

    var uiLoaded = false;
    var observer = null;

    // As in script.js: one observer watches the page from the start; the first change after which
    // the page holds #txt2img_prompt runs the onUiLoaded callbacks, and every change runs the
    // onUiUpdate callbacks and (debounced) the onAfterUiUpdate ones.
    function onMutations(records) {
        if (!uiLoaded && win.gradioApp().querySelector('#txt2img_prompt')) {
            uiLoaded = true;
            // The WebUI's own scripts load before any extension's, so its accordions are set up first.
            run([function() {
                win.gradioApp().querySelectorAll('.input-accordion').forEach(linkInputAccordion);
            }]);
            run(loaded);
        }
        run(updates, records);
        clearTimeout(afterTimer);
        afterTimer = setTimeout(function() {
            run(afterUpdates);
        }, 20);
    }

    if (win.MutationObserver) {
        observer = new win.MutationObserver(onMutations);
        observer.observe(win.document.documentElement, {childList: true, subtree: true});
    }

    win.webuiShim = {
        errors: errors,
        isUiLoaded: function() {
            return uiLoaded;
        },
        counts: function() {
            return {loaded: loaded.length, updates: updates.length, afterUpdates: afterUpdates.length};
        },
        stop: function() {
            if (observer) observer.disconnect();
            clearTimeout(afterTimer);
        },
    };
})(window);
