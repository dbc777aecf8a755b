// The run monitor page: the live-runs engineer's monitor (frontend/src/monitor/).
export { MonitorPage as RunMonitorPage } from '../monitor/MonitorPage';
