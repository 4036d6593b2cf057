/* SPDX-License-Identifier: MIT */
/*
 * The serial console: an esp_console REPL on the console UART (115200 by default; `idf.py
 * monitor`) with linenoise's line editing and history; on the linux target a plain line loop
 * on stdin (linux_console_task, below, says why) into the same commands. Its task only reads
 * what the other tasks share for it (logic/fw_console.h: the status view, the detector's view
 * g_view) and changes only the settings copy that is saved to NVS (fw_console_port.h);
 * `register` is a request the sampling task takes, never a write into its meter.
 *
 * Secrets: shown as "(set)" or "(not set)"; `set wifi_pass` without a value reads it without
 * echo (the chip's UART does not echo, linenoise draws what it reads and this reads past it; a
 * linux terminal's echo is switched off for it). A secret typed on the command line is in
 * linenoise's history: it is cleared then.
 */
#include <stdio.h>
#include <string.h>

#include "esp_app_desc.h"
#include "esp_console.h"
#include "esp_log.h"
#include "esp_system.h"
#include "esp_timer.h"
#include "freertos/FreeRTOS.h"
#include "freertos/task.h"
#include "linenoise/linenoise.h"
#include "sdkconfig.h"
#if CONFIG_IDF_TARGET_LINUX
#include <termios.h>
#include <unistd.h>
#endif

#include "fw_console_port.h"
#include "fw_port.h"
#include "fw_sampling.h"
#include "ota.h"
#include "powerlogger/retry.h"

static const char *TAG = "console";

static uint32_t boot_no;

static void print_kwh(const char *label, int64_t uwh)
{
	printf("%s%lld.%03lld kWh", label, (long long)(uwh / 1000000000),
	       (long long)(uwh % 1000000000 / 1000000));
}

/* ---- status, version, restart ---- */

static int cmd_status(int argc, char **argv)
{
	const struct fw_settings *s = fw_settings_get();
	struct fw_sampling_view sv;
	struct fw_status_view v;
	int64_t up = esp_timer_get_time() / 1000000;
	char line[160];

	fw_status_read(fw_console_status(), &v);
	printf("boot %lu, up %lld d %02lld:%02lld:%02lld\n", (unsigned long)boot_no,
	       (long long)(up / 86400), (long long)(up / 3600 % 24), (long long)(up / 60 % 60),
	       (long long)(up % 60));
#if CONFIG_IDF_TARGET_LINUX
	printf("network: the host's (linux target)\n");
	(void)s;
#else
	printf("wifi: %s (\"%s\")\n", v.wifi_up ? "connected" : "not connected", s->wifi_ssid);
#endif
	printf("records: %lu waiting in the outbox, %llu delivered since boot\n",
	       (unsigned long)v.waiting, (unsigned long long)v.delivered);
	if (!v.have_error) {
		printf("last error: none since boot\n");
	} else {
		int64_t ago = (esp_timer_get_time() - v.err_at_us) / 1000000;

		if (v.err_transport != PL_XPORT_NONE)
			printf("last error: %s, %lld s ago", pl_sink_transport_name(
				       (enum pl_sink_transport)v.err_transport), (long long)ago);
		else
			printf("last error: HTTP %d, %lld s ago", v.err_status, (long long)ago);
		printf("%s\n", v.err_action == PL_SINK_QUARANTINE ? " (a record quarantined)" : "");
	}
	if (v.have_meter) {
		print_kwh("register: ", v.register_uwh);
		printf(", power %lld W\n", (long long)(v.power_mw / 1000));
	} else {
		printf("register: not known yet\n");
	}
	fw_ota_status(line, sizeof(line));
	printf("%s\n", line); /* "ota: <slot>, version <v>, <state>" */
	if (fw_sampling_view_read(&g_view, &sv, NULL) == 0)
		printf("detector: %s, %lu pulse(s) rejected\n", fw_sampling_view_state_name(&sv),
		       (unsigned long)sv.rejected);
	else
		printf("detector: not known yet\n");
#if !CONFIG_IDF_TARGET_LINUX /* the host's malloc: no heap figures there */
	printf("heap free: %u B (lowest %u B)\n", (unsigned)esp_get_free_heap_size(),
	       (unsigned)esp_get_minimum_free_heap_size());
#endif
	return 0;
}

static int cmd_version(int argc, char **argv)
{
	const esp_app_desc_t *d = esp_app_get_description();

	printf("%s %s, built %s %s, ESP-IDF %s\n", d->project_name, d->version, d->date, d->time,
	       d->idf_ver);
	return 0;
}

static int cmd_restart(int argc, char **argv)
{
	printf("restarting\n");
	fflush(stdout);
	vTaskDelay(pdMS_TO_TICKS(100));
	esp_restart();
	return 0;
}

/* ---- settings ---- */

static int changed(int k)
{
	const struct fw_set_desc *d = fw_settings_desc(k);

	return memcmp((const char *)fw_settings_get() + d->offset,
		      (const char *)fw_settings_edit() + d->offset, d->size) != 0;
}

static void show_key(int k)
{
	const struct fw_settings *s = fw_settings_edit();
	const struct fw_set_desc *d = fw_settings_desc(k);
	char val[FW_SET_VALUE_MAX];
	int quote = d->type == FW_SET_T_STR && !(d->flags & FW_SET_SECRET);

	fw_settings_format(s, k, val, sizeof(val));
	printf("  %-15s %s%s%s%s%s\n", d->name, quote ? "\"" : "", val, quote ? "\"" : "",
	       (s->user_set & (1u << k)) ? "" : "  (default)",
	       changed(k) ? "  (after restart)" : "");
}

static int cmd_show(int argc, char **argv)
{
	char msg[FW_SET_MSG_MAX];

	if (argc == 2) {
		int k = fw_settings_find(argv[1]);

		if (k < 0) {
			printf("show: no setting \"%s\" (`show` lists them)\n", argv[1]);
			return 0;
		}
		show_key(k);
		printf("  %s\n", fw_settings_desc(k)->help);
		return 0;
	}
	for (int k = 0; k < FW_SET_COUNT; k++)
		show_key(k);
	if (fw_settings_check(fw_settings_edit(), msg, sizeof(msg)) != 0)
		printf("problem: %s\n", msg);
	return 0;
}

/*
 * A line from the terminal without echo; Enter ends it. -1: aborted (Ctrl-C), the end of the
 * input, or nothing typed for a minute. On the linux target a read interrupted by the FreeRTOS
 * port's signals comes back as EOF with an error: polled again every 20 ms.
 */
static int read_hidden(char *buf, size_t cap)
{
	int64_t until = esp_timer_get_time() + 60 * 1000000LL;
	size_t n = 0;
	int rc = 0;
#if CONFIG_IDF_TARGET_LINUX
	/* the chip's UART never echoes; a terminal does, unless told not to */
	struct termios saved, quiet;
	int tty = tcgetattr(STDIN_FILENO, &saved) == 0;

	if (tty) {
		quiet = saved;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
	}
#endif

	fflush(stdout);
	for (;;) {
		int c = fgetc(stdin);

		if (c == EOF) {
			if (feof(stdin) || esp_timer_get_time() >= until) {
				rc = -1;
				break;
			}
			clearerr(stdin);
			vTaskDelay(pdMS_TO_TICKS(20));
			continue;
		}
		if (c == 3) {
			rc = -1;
			break;
		}
		if (c == '\r' || c == '\n')
			break;
		if ((c == 8 || c == 127) && n > 0)
			n--;
		else if (c >= 0x20 && c != 127 && n + 1 < cap)
			buf[n++] = (char)c;
	}
	buf[n] = '\0';
#if CONFIG_IDF_TARGET_LINUX
	if (tty)
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
#endif
	printf("\n");
	return rc;
}

/* A sink this firmware was built without cannot be switched on at run time, nor an http://
 * update URL be set where ota.c refuses it. */
static const char *not_built(int k, const struct fw_settings *s)
{
#ifndef CONFIG_PL_OTA_ALLOW_HTTP
	if (k == FW_SET_OTA_URL && strncmp(s->ota_url, "http://", 7) == 0)
		return "http:// is refused (anyone on the path could hand over an image): "
		       "https://, or a build with PL_OTA_ALLOW_HTTP";
#endif
#ifndef CONFIG_PL_INFLUX_ENABLE
	if (k == FW_SET_INFLUX_ENABLE && s->influx_enable)
		return "this firmware is built without InfluxDB (menuconfig: PowerLogger > "
		       "Deliver to InfluxDB)";
#endif
#ifndef CONFIG_PL_MQTT_ENABLE
	if (k == FW_SET_MQTT_ENABLE && s->mqtt_enable)
		return "this firmware is built without MQTT (menuconfig: PowerLogger > "
		       "Publish to an MQTT broker)";
#endif
	(void)k;
	(void)s;
	return NULL;
}

static void saved(int k)
{
	char msg[FW_SET_MSG_MAX];

	if (fw_settings_store(msg, sizeof(msg)) != 0) {
		printf("not saved: %s (the value is kept until restart, not used)\n", msg);
		return;
	}
	show_key(k);
	if (fw_settings_desc(k)->flags & FW_SET_RESTART)
		printf("saved; takes effect after `restart`\n");
	else
		printf("saved\n");
	if (fw_settings_check(fw_settings_edit(), msg, sizeof(msg)) != 0)
		printf("note: %s\n", msg);
}

static int cmd_set(int argc, char **argv)
{
	struct fw_settings *s = fw_settings_edit();
	char msg[FW_SET_MSG_MAX], secret[FW_SET_VALUE_MAX];
	const struct fw_set_desc *d;
	const char *value, *why;
	char was[FW_SET_VALUE_MAX];
	uint32_t was_set;
	int k;

	if (argc < 2 || argc > 3) {
		printf("usage: set KEY VALUE (quote a value with spaces: set device \"cellar meter\"; "
		       "empty: \"\")\n");
		return 0;
	}
	k = fw_settings_find(argv[1]);
	if (k < 0) {
		printf("set: no setting \"%s\" (`show` lists them)\n", argv[1]);
		return 0;
	}
	d = fw_settings_desc(k);
	if (argc == 3) {
		value = argv[2];
		if (d->flags & FW_SET_SECRET) {
			/* the line with the secret is in the history now: up-arrow would show it */
			linenoiseHistoryFree();
			printf("(the command history is cleared: it held a secret; `set %s` alone "
			       "asks for it without echo)\n", d->name);
		}
	} else if (d->flags & FW_SET_SECRET) {
		printf("%s (not shown; Enter ends, Ctrl-C cancels): ", d->name);
		if (read_hidden(secret, sizeof(secret)) != 0) {
			printf("\ncancelled\n");
			return 0;
		}
		value = secret;
	} else {
		printf("usage: set %s VALUE (%s)\n", d->name, d->help);
		return 0;
	}
	memcpy(was, (char *)s + d->offset, d->size); /* to undo a not_built() refusal */
	was_set = s->user_set;
	if (fw_settings_set(s, k, value, msg, sizeof(msg)) != 0) {
		printf("%s\n", msg);
	} else if ((why = not_built(k, s)) != NULL) {
		memcpy((char *)s + d->offset, was, d->size);
		s->user_set = was_set;
		printf("%s: %s\n", d->name, why);
	} else {
		saved(k);
	}
	memset(secret, 0, sizeof(secret));
	return 0;
}

static int cmd_unset(int argc, char **argv)
{
	int k = argc == 2 ? fw_settings_find(argv[1]) : -1;

	if (argc != 2) {
		printf("usage: unset KEY (back to the Kconfig value)\n");
		return 0;
	}
	if (k < 0) {
		printf("unset: no setting \"%s\" (`show` lists them)\n", argv[1]);
		return 0;
	}
	fw_settings_unset(fw_settings_edit(), fw_settings_defaults(), k);
	saved(k);
	return 0;
}

static int cmd_factory_reset(int argc, char **argv)
{
	char msg[FW_SET_MSG_MAX];

	if (argc != 2 || strcmp(argv[1], "yes") != 0) {
		printf("usage: factory_reset yes (erases the stored settings: WiFi and servers "
		       "back to the Kconfig values; the records, the register and the boot count "
		       "stay)\n");
		return 0;
	}
	if (fw_settings_factory_reset(msg, sizeof(msg)) != 0)
		printf("failed: %s\n", msg);
	else
		printf("settings erased; the Kconfig values from the next `restart` on\n");
	return 0;
}

/* ---- the register ---- */

static int cmd_register(int argc, char **argv)
{
	struct fw_regreq *q = fw_console_regreq();
	int64_t want, id, old = 0;
	int rc = 0;

	if (argc != 2 || fw_parse_kwh(argv[1], &want) != 0) {
		printf("usage: register KWH (the meter's reading, e.g. register 12345.678; "
		       "0 to %lld)\n", (long long)FW_KWH_MAX);
		return 0;
	}
	id = fw_regreq_post(q, want);
	if (id < 0) {
		printf("register: refused (%d)\n", (int)id);
		return 0;
	}
	/* the sampling task takes it after its next tick, within ~100 ms */
	for (int i = 0; i < 40 && rc != 1; i++) {
		vTaskDelay(pdMS_TO_TICKS(50));
		rc = fw_regreq_result(q, id, &old);
	}
	if (rc != 1) {
		printf("register: asked; the sampling task has not taken it yet (see its log)\n");
		return 0;
	}
	print_kwh("register set to ", want);
	print_kwh(" (was ", old);
	printf("); the next interval record carries it into the outbox (within interval_s "
	       "%lu s: a restart before then loses it)\n",
	       (unsigned long)fw_settings_get()->interval_s);
	if (want < old)
		printf("it went down: Home Assistant's energy sensor sees a meter reset\n");
	return 0;
}

void fw_console_sampling_tick(struct fw_sampling *s)
{
	int64_t old, now;
	int rc = fw_regreq_take(fw_console_regreq(), s, &old, &now);

	if (rc == 1 && now < old)
		ESP_LOGW(TAG, "energy register set to %.3f Wh from %.3f Wh: it went down, Home "
			 "Assistant sees a meter reset", (double)now / 1e6, (double)old / 1e6);
	else if (rc == 1)
		ESP_LOGI(TAG, "energy register set to %.3f Wh (was %.3f Wh)", (double)now / 1e6,
			 (double)old / 1e6);
	else if (rc < 0)
		ESP_LOGE(TAG, "energy register: the meter refused the new value (%d)", rc);
	fw_status_meter(fw_console_status(), pl_meter_register(&s->ch.meter), s->stats.power_mw);
}

/* ---- an update ---- */

static int cmd_ota(int argc, char **argv)
{
	int force = argc == 3 && strcmp(argv[1], "force") == 0;
	char line[160];
	int rc;

	if (argc == 1) {
		fw_ota_status(line, sizeof(line));
		printf("%s\n", line);
		return 0;
	}
	if (argc != 2 && !force) {
		printf("usage: ota [force] URL (an image from https://; force: also the same, an "
		       "older or the rolled-back version); ota alone: the state\n");
		return 0;
	}
	rc = force ? fw_ota_start_forced(argv[2]) : fw_ota_start(argv[1]);
	if (rc == 0)
		printf("update started: its progress and outcome are in the log (tag ota)\n");
	else if (rc == -PL_EBUSY)
		printf("ota: an update is running, or this image is still on probation\n");
	else if (rc == -PL_ENOMEM)
		printf("ota: not enough memory for a second TLS connection\n");
	else if (rc == -PL_ENOENT)
		printf("ota: no over-the-air update here (the linux target)\n");
	else
		printf("ota: refused (the log says why)\n");
	return 0;
}

/* ---- the REPL ---- */

static const esp_console_cmd_t cmds[] = {
	{.command = "status", .help = "boot, uptime, WiFi, records, last error, register, "
	 "power, detector", .func = cmd_status},
	{.command = "show", .help = "the settings (secrets masked); show KEY: one, with its "
	 "meaning", .hint = "[KEY]", .func = cmd_show},
	{.command = "set", .help = "set a setting, validated and saved (a secret without VALUE "
	 "is asked for without echo)", .hint = "KEY [VALUE]", .func = cmd_set},
	{.command = "unset", .help = "a setting back to its Kconfig value", .hint = "KEY",
	 .func = cmd_unset},
	{.command = "register", .help = "set the energy register to the meter's reading",
	 .hint = "KWH", .func = cmd_register},
	{.command = "factory_reset", .help = "erase the stored settings", .hint = "yes",
	 .func = cmd_factory_reset},
	{.command = "ota", .help = "update from an image URL; alone: the running image's state",
	 .hint = "[force] [URL]", .func = cmd_ota},
	{.command = "restart", .help = "restart the logger", .func = cmd_restart},
	{.command = "version", .help = "firmware and ESP-IDF versions", .func = cmd_version},
};

static esp_err_t register_commands(void)
{
	esp_err_t err = ESP_OK;

	for (size_t i = 0; err == ESP_OK && i < sizeof(cmds) / sizeof(cmds[0]); i++)
		err = esp_console_cmd_register(&cmds[i]);
	if (err == ESP_OK)
		err = esp_console_register_help_command();
	return err;
}

#if CONFIG_IDF_TARGET_LINUX
/*
 * The linux target's console: lines from stdin into esp_console_run(). Not ESP-IDF's linux
 * REPL: on the FreeRTOS POSIX port the port's signals interrupt its read, linenoise returns an
 * empty line at once, and the REPL task (priority 2) spins printing prompts, starving every
 * task below it (the idle task too); at the end of the input it spins printing "Unrecognized
 * command" (2.7 MB in 3 s with </dev/null). Here an interrupted read waits 20 ms, and the end
 * of the input ends the console (the logger runs on).
 */
static void linux_console_task(void *arg)
{
	char line[256];
	size_t n = 0;
	int ret;

	printf("powerlogger> ");
	fflush(stdout);
	for (;;) {
		int c = fgetc(stdin);

		if (c == EOF) {
			if (feof(stdin)) {
				ESP_LOGI(TAG, "console: end of input");
				vTaskDelete(NULL);
			}
			clearerr(stdin);
			vTaskDelay(pdMS_TO_TICKS(20));
			continue;
		}
		if (c != '\n' && c != '\r') {
			if (n + 1 < sizeof(line))
				line[n++] = (char)c;
			continue;
		}
		line[n] = '\0';
		if (n > 0 && esp_console_run(line, &ret) == ESP_ERR_NOT_FOUND)
			printf("unknown command (`help` lists them)\n");
		n = 0;
		printf("powerlogger> ");
		fflush(stdout);
	}
}

void fw_console_start(uint32_t boot)
{
	esp_console_config_t cc = ESP_CONSOLE_CONFIG_DEFAULT();
	esp_err_t err;

	boot_no = boot;
	err = esp_console_init(&cc);
	if (err == ESP_OK)
		err = register_commands();
	if (err == ESP_OK) {
		ESP_LOGI(TAG, "console on stdin: type `help`");
		if (xTaskCreate(linux_console_task, "console", 5120, NULL, 2, NULL) != pdPASS)
			err = ESP_ERR_NO_MEM;
	}
	if (err != ESP_OK)
		ESP_LOGE(TAG, "no console (%s): settings only from Kconfig and NVS",
			 esp_err_to_name(err));
}
#else
void fw_console_start(uint32_t boot)
{
	esp_console_repl_t *repl = NULL;
	esp_console_repl_config_t rc = ESP_CONSOLE_REPL_CONFIG_DEFAULT();
	esp_err_t err;

	boot_no = boot;
	rc.prompt = "powerlogger> ";
	rc.task_stack_size = 5120;
	rc.max_cmdline_length = 256;
	/* the REPL's constructor sets esp_console up: the commands come after it */
#if CONFIG_ESP_CONSOLE_UART_DEFAULT || CONFIG_ESP_CONSOLE_UART_CUSTOM
	esp_console_dev_uart_config_t hw = ESP_CONSOLE_DEV_UART_CONFIG_DEFAULT();

	err = esp_console_new_repl_uart(&hw, &rc, &repl);
#elif CONFIG_ESP_CONSOLE_USB_SERIAL_JTAG
	esp_console_dev_usb_serial_jtag_config_t hw =
		ESP_CONSOLE_DEV_USB_SERIAL_JTAG_CONFIG_DEFAULT();

	err = esp_console_new_repl_usb_serial_jtag(&hw, &rc, &repl);
#else
	err = ESP_ERR_NOT_SUPPORTED;
#endif
	if (err == ESP_OK)
		err = register_commands();
	if (err == ESP_OK)
		err = esp_console_start_repl(repl);
	if (err != ESP_OK)
		ESP_LOGE(TAG, "no serial console (%s): settings only from Kconfig and NVS",
			 esp_err_to_name(err));
	else
		ESP_LOGI(TAG, "console ready: type `help`");
}
#endif
